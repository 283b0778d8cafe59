//! Checks a FlashSale spec the way the API server's schema does (so the one-process CLI
//! gives the same messages) and turns it into typed terms. The sale's terms are checked
//! by the rules `POST /api/sales` and the order service's internal API share
//! (`goodsmall_contracts::sales::SaleTerms`), whose limits the CRD's schema carries.
//! The waiting room's durations are written as in `warmup.lead` ("15m") and checked in
//! seconds by the same rules (`goodsmall_contracts::admission`); the refusals the CRD's
//! CEL rules make about them carry the CRD's messages.

use std::time::Duration;

use goodsmall_contracts::{
    admission::{self, AdmissionField, AdmissionInput},
    sales::{SaleTerms, Spelling, Term, TermsInput},
};
use goodsmall_platform::money::DecimalInput;

use crate::{
    crd::{self, AdmissionSpec, FlashSaleSpec},
    duration,
};

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
    let mut problems = Vec::new();
    let admission = spec.admission.as_ref().and_then(|a| admission_input(a, &mut problems));
    let input = TermsInput {
        product_id: spec.product_id,
        stock: spec.stock,
        price: &price,
        opens_at: spec.opens_at,
        closes_at: spec.closes_at,
        per_user_limit: spec.per_user_limit,
        admission: admission.as_ref(),
    };
    let sale = SaleTerms::parse(&input, Spelling::Manifest);
    problems.extend(sale.as_ref().err().into_iter().flatten().map(|e| format!("{}: {}", e.field, crd_message(e))));
    for (field, replicas) in
        [("orderReplicas", spec.warmup.order_replicas), ("paymentReplicas", spec.warmup.payment_replicas)]
    {
        if let Some(r) = replicas.filter(|r| !(1..=MAX_REPLICAS).contains(r)) {
            problems.push(format!("spec.warmup.{field}: must be between 1 and {MAX_REPLICAS}, got {r}"));
        }
    }
    let lead = duration::parse(&spec.warmup.lead).map_err(|e| problems.push(format!("spec.warmup.lead: {e}"))).ok();
    // The CRD's rule on the whole spec: the pre-queue opens once the sale is loaded.
    if let (Some(lead), Some(a)) = (lead, &admission) {
        if a.pre_queue_seconds > 0 && Duration::from_secs(a.pre_queue_seconds.unsigned_abs()) > lead {
            problems.push(format!("{}: {}", PRE_QUEUE, crd::PRE_QUEUE_BEYOND_WARMUP));
        }
    }
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

const PRE_QUEUE: &str = "spec.admission.preQueue";
const TURN_TTL: &str = "spec.admission.turnTTL";

/// The waiting room's terms in seconds, as the JSON APIs take them; `None` (and the
/// problem noted) when a duration does not read.
fn admission_input(spec: &AdmissionSpec, problems: &mut Vec<String>) -> Option<AdmissionInput> {
    let mut seconds = |field: &str, text: &str| {
        let parsed = duration::parse(text).map_err(|e| problems.push(format!("{field}: {e}"))).ok()?;
        // Beyond i64 seconds is beyond every range: the range's message says so.
        Some(i64::try_from(parsed.as_secs()).unwrap_or(i64::MAX))
    };
    let pre_queue_seconds = seconds(PRE_QUEUE, &spec.pre_queue);
    let turn_ttl_seconds = seconds(TURN_TTL, &spec.turn_ttl);
    Some(AdmissionInput {
        mode: match spec.mode {
            crd::AdmissionMode::Queue => admission::AdmissionMode::Queue,
        },
        pre_queue_seconds: pre_queue_seconds?,
        admit_per_second: spec.admit_per_second,
        turn_ttl_seconds: turn_ttl_seconds?,
    })
}

/// A broken rule's message as the CRD's own rule words it, where the CRD has one: the
/// durations' ranges in the manifest's units.
fn crd_message(e: &goodsmall_contracts::sales::TermError) -> String {
    match e.term {
        Term::Admission(AdmissionField::PreQueue) => crd::PRE_QUEUE_TOO_LONG.to_owned(),
        Term::Admission(AdmissionField::TurnTtl) => crd::TURN_TTL_OUT_OF_RANGE.to_owned(),
        _ => e.message.clone(),
    }
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
            admission: None,
        }
    }

    fn queued(pre_queue: &str, admit_per_second: Option<i64>, turn_ttl: &str) -> FlashSaleSpec {
        let admission = AdmissionSpec {
            mode: crd::AdmissionMode::Queue,
            pre_queue: pre_queue.into(),
            admit_per_second,
            turn_ttl: turn_ttl.into(),
        };
        FlashSaleSpec { admission: Some(admission), ..spec() }
    }

    #[test]
    fn a_waiting_room_becomes_the_sales_admission_in_seconds() {
        let terms = validate(&queued("10m", None, "2m")).unwrap();
        let a = terms.sale.admission.expect("the sale carries its waiting room");
        assert_eq!((a.pre_queue_seconds, a.admit_per_second, a.turn_ttl_seconds), (600, 4, 120), "100 units / 30 s");
        let a = validate(&queued("0s", Some(250), "1h")).unwrap().sale.admission.unwrap();
        assert_eq!((a.pre_queue_seconds, a.admit_per_second, a.turn_ttl_seconds), (0, 250, 3600));
        assert_eq!(validate(&spec()).unwrap().sale.admission, None, "no admission: first come, first served");
        // What the operator sends is what the order service reads and records.
        let sent = serde_json::to_value(terms.sale.for_merchant(3)).unwrap();
        let body: goodsmall_contracts::sales::NewSaleBody = serde_json::from_value(sent).unwrap();
        assert_eq!(body.parse().unwrap().admission, terms.sale.admission);
    }

    #[test]
    fn the_waiting_rooms_rules_refuse_with_the_crds_messages() {
        let named = |spec: FlashSaleSpec| validate(&spec).unwrap_err();
        assert_eq!(
            named(queued("11m", Some(5), "2m")),
            [format!("spec.admission.preQueue: {}", crd::PRE_QUEUE_BEYOND_WARMUP)]
        );
        let mut long_lead = queued("25h", Some(5), "2m");
        long_lead.warmup.lead = "30h".into();
        assert_eq!(named(long_lead.clone()), ["spec.admission.preQueue: must be at most 24h"]);
        long_lead.admission.as_mut().unwrap().pre_queue = "24h".into();
        assert!(validate(&long_lead).is_ok(), "a day's pre-queue with a longer warm-up");
        assert_eq!(
            named(queued("10m", Some(0), "9s")),
            [
                "spec.admission.admitPerSecond: must be between 1 and 10000, got 0",
                "spec.admission.turnTTL: must be between 10s and 1h",
            ]
        );
        assert_eq!(named(queued("10m", Some(10_001), "61m")).len(), 2);
        assert_eq!(
            named(queued("soon", None, "2")),
            [
                "spec.admission.preQueue: `soon` is not a duration such as 90s, 10m or 1h30m",
                "spec.admission.turnTTL: `2` is not a duration such as 90s, 10m or 1h30m",
            ]
        );
        for ok in [queued("10m", Some(1), "10s"), queued("1s", Some(10_000), "1h"), queued("0s", None, "3600s")] {
            assert!(validate(&ok).is_ok(), "{:?}", ok.admission);
        }
        let crd = crate::crd::crd_yaml();
        for message in [crd::PRE_QUEUE_BEYOND_WARMUP, crd::PRE_QUEUE_TOO_LONG, crd::TURN_TTL_OUT_OF_RANGE] {
            assert!(crd.contains(message), "the CRD carries the same message: {message}");
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
        let rate = &schema["admission"]["properties"]["admitPerSecond"];
        let max_rate = goodsmall_contracts::admission::MAX_ADMIT_PER_SECOND as f64;
        assert_eq!((rate["minimum"].as_f64(), rate["maximum"].as_f64()), (Some(1.0), Some(max_rate)));
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
