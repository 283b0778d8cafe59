//! Checks a FlashSale spec the way the API server's schema does (so the one-process CLI
//! gives the same messages) and turns it into typed terms.

use std::time::Duration;

use chrono::{DateTime, Utc};
use goodsmall_platform::money::{DecimalInput, Price};

use crate::{crd::FlashSaleSpec, duration};

/// A spec that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Terms {
    pub product_id: i64,
    pub stock: i64,
    pub price: Price,
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub per_user_limit: i64,
    pub lead: Duration,
    pub order_replicas: Option<i32>,
    pub payment_replicas: Option<i32>,
}

/// Every problem of the spec, each as `spec.<field>: <message>`; the messages of the
/// CRD's rules are the CRD's own.
pub fn validate(spec: &FlashSaleSpec) -> Result<Terms, Vec<String>> {
    let mut problems = Vec::new();
    let mut range = |field: &str, value: i64, min: i64, max: i64| {
        if value < min || value > max {
            problems.push(format!("spec.{field}: must be between {min} and {max}, got {value}"));
        }
    };
    range("productId", spec.product_id, 1, i64::MAX);
    range("stock", spec.stock, 1, 100_000_000);
    range("perUserLimit", spec.per_user_limit, 1, 1000);
    for (field, replicas) in [("orderReplicas", spec.warmup.order_replicas), ("paymentReplicas", spec.warmup.payment_replicas)] {
        if let Some(r) = replicas {
            range(&format!("warmup.{field}"), i64::from(r), 1, 1000);
        }
    }
    let price = match Price::parse(&DecimalInput::Text(spec.price.clone())) {
        Ok(p) if price_shape(&spec.price) => Some(p),
        Ok(_) => {
            problems.push(format!("spec.price: `{}` must be a decimal such as 120.00", spec.price));
            None
        }
        Err(e) if e.contains("greater than zero") => {
            problems.push("spec.price: price must be greater than zero".into());
            None
        }
        Err(e) => {
            problems.push(format!("spec.price: {e}"));
            None
        }
    };
    if spec.closes_at <= spec.opens_at {
        problems.push("spec: closesAt must be after opensAt".into());
    }
    let lead = duration::parse(&spec.warmup.lead).map_err(|e| problems.push(format!("spec.warmup.lead: {e}"))).ok();
    match (price, lead) {
        (Some(price), Some(lead)) if problems.is_empty() => Ok(Terms {
            product_id: spec.product_id,
            stock: spec.stock,
            price,
            opens_at: spec.opens_at,
            closes_at: spec.closes_at,
            per_user_limit: spec.per_user_limit,
            lead,
            order_replicas: spec.warmup.order_replicas,
            payment_replicas: spec.warmup.payment_replicas,
        }),
        _ => Err(problems),
    }
}

/// The schema's pattern `^[0-9]{1,9}(\.[0-9]{1,2})?$`.
fn price_shape(text: &str) -> bool {
    let (whole, cents) = text.split_once('.').unwrap_or((text, "1"));
    let digits = |s: &str, max: usize| !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole, 9) && digits(cents, 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::Warmup;

    fn spec() -> FlashSaleSpec {
        FlashSaleSpec {
            product_id: 1,
            stock: 100,
            price: "120.00".into(),
            opens_at: "2026-12-01T10:00:00Z".parse().unwrap(),
            closes_at: "2026-12-01T11:00:00Z".parse().unwrap(),
            per_user_limit: 2,
            warmup: Warmup::default(),
        }
    }

    #[test]
    fn a_good_spec_becomes_terms() {
        let terms = validate(&spec()).unwrap();
        assert_eq!((terms.price.cents(), terms.lead, terms.stock), (12_000, Duration::from_secs(600), 100));
    }

    #[test]
    fn every_problem_is_named_with_the_crd_messages() {
        let mut bad = spec();
        bad.stock = 0;
        bad.per_user_limit = 0;
        bad.price = "0.00".into();
        bad.closes_at = bad.opens_at;
        bad.warmup.lead = "soon".into();
        let problems = validate(&bad).unwrap_err();
        assert_eq!(
            problems,
            [
                "spec.stock: must be between 1 and 100000000, got 0",
                "spec.perUserLimit: must be between 1 and 1000, got 0",
                "spec.price: price must be greater than zero",
                "spec: closesAt must be after opensAt",
                "spec.warmup.lead: `soon` is not a duration such as 90s, 10m or 1h30m",
            ]
        );
        let crd = crate::crd::crd_yaml();
        for message in ["price must be greater than zero", "closesAt must be after opensAt"] {
            assert!(crd.contains(message), "the CRD carries the same message: {message}");
        }
        for price in ["1.234", "12,00", "-1", "1e3", "abc"] {
            let mut bad = spec();
            bad.price = price.into();
            assert!(validate(&bad).is_err(), "{price} must be refused");
        }
    }
}
