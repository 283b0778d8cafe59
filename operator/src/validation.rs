//! Checks a FlashSale spec the way the API server's schema does (so the one-process CLI
//! gives the same messages) and turns it into typed terms. The sale's terms are checked
//! by the rules `POST /api/sales` and the order service's internal API share
//! (`goodsmall_contracts::sales::SaleTerms`), whose limits the CRD's schema carries.

use std::time::Duration;

use goodsmall_contracts::sales::{SaleTerms, Spelling, TermsInput};
use goodsmall_platform::money::DecimalInput;

use crate::{crd::FlashSaleSpec, duration};

/// A spec that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Terms {
    /// The sale's terms, as any way of making a sale checks them.
    pub sale: SaleTerms,
    pub lead: Duration,
    pub order_replicas: Option<i32>,
    pub payment_replicas: Option<i32>,
}

/// Every problem of the spec, each as `spec.<field>: <message>`; the messages of the
/// CRD's rules are the CRD's own.
pub fn validate(spec: &FlashSaleSpec) -> Result<Terms, Vec<String>> {
    let price = DecimalInput::Text(spec.price.clone());
    let input = TermsInput {
        product_id: spec.product_id,
        stock: spec.stock,
        price: &price,
        opens_at: spec.opens_at,
        closes_at: spec.closes_at,
        per_user_limit: spec.per_user_limit,
        // `spec.admission` comes with the CRD's field (issue #22, in progress).
        admission: None,
    };
    let sale = SaleTerms::parse(&input, Spelling::Manifest);
    let mut problems: Vec<String> =
        sale.as_ref().err().into_iter().flatten().map(|e| format!("{}: {}", e.field, e.message)).collect();
    for (field, replicas) in
        [("orderReplicas", spec.warmup.order_replicas), ("paymentReplicas", spec.warmup.payment_replicas)]
    {
        if let Some(r) = replicas.filter(|r| !(1..=MAX_REPLICAS).contains(r)) {
            problems.push(format!("spec.warmup.{field}: must be between 1 and {MAX_REPLICAS}, got {r}"));
        }
    }
    let lead = duration::parse(&spec.warmup.lead).map_err(|e| problems.push(format!("spec.warmup.lead: {e}"))).ok();
    match (sale, lead) {
        (Ok(sale), Some(lead)) if problems.is_empty() => Ok(Terms {
            sale,
            lead,
            order_replicas: spec.warmup.order_replicas,
            payment_replicas: spec.warmup.payment_replicas,
        }),
        _ => Err(problems),
    }
}

/// The most warm-up replicas a sale may ask of a workload (the CRD's range too).
pub const MAX_REPLICAS: i32 = 1000;

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
        assert_eq!((terms.sale.price.cents(), terms.lead, terms.sale.stock), (12_000, Duration::from_secs(600), 100));
    }

    #[test]
    fn the_crd_carries_the_shared_limits() {
        use goodsmall_contracts::sales::{MAX_PER_USER_LIMIT, MAX_STOCK};
        use kube::CustomResourceExt;
        let crd = serde_json::to_value(crate::crd::FlashSale::crd()).unwrap();
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
        let bounds = |field: &str| (schema[field]["minimum"].as_f64(), schema[field]["maximum"].as_f64());
        assert_eq!(bounds("stock"), (Some(1.0), Some(MAX_STOCK as f64)));
        assert_eq!(bounds("perUserLimit"), (Some(1.0), Some(MAX_PER_USER_LIMIT as f64)));
        let mut widest = spec();
        (widest.stock, widest.per_user_limit) = (MAX_STOCK, MAX_PER_USER_LIMIT);
        assert!(validate(&widest).is_ok(), "the widest terms the schema allows are accepted");
        (widest.stock, widest.per_user_limit) = (MAX_STOCK + 1, MAX_PER_USER_LIMIT + 1);
        assert_eq!(
            validate(&widest).unwrap_err(),
            [
                "spec.stock: must be between 1 and 100000000, got 100000001",
                "spec.perUserLimit: must be between 1 and 1000, got 1001"
            ]
        );
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
