//! Warm-up scaling, shared by overlapping sales. Each workload remembers, in
//! annotations on the object the operator changes, the replicas it had before the
//! first sale ([`BASELINE`]) and what each sale holding it asked for ([`CLAIMS`]).
//! It runs at the largest claim (never below its baseline) and returns to the
//! baseline when the last claim goes. Where an HPA or a KEDA ScaledObject manages the
//! Deployment, its minimum replicas are raised instead, so the two never fight.

pub mod kubernetes;

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::crd::ScaledTarget;

pub const BASELINE: &str = "goodsmall.io/baseline-replicas";
pub const CLAIMS: &str = "goodsmall.io/warmup-claims";

/// The order or payment service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Order,
    Payment,
}

/// What a sale asks of its workloads for the warm-up (unset: leave it alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Request {
    pub order: Option<i32>,
    pub payment: Option<i32>,
}

impl Request {
    pub fn of(&self, w: Workload) -> Option<i32> {
        match w {
            Workload::Order => self.order,
            Workload::Payment => self.payment,
        }
    }
}

/// What scaling amounts to where the sale runs.
#[derive(Debug, Clone, PartialEq)]
pub enum ScaleReport {
    /// The targets this sale holds now (empty once released).
    Applied(Vec<ScaledTarget>),
    /// No cluster (the one-process shop): nothing to scale.
    NotApplicable,
}

/// Holds or gives back a sale's warm-up replicas. `sale` is the manifest's
/// `namespace/name`; both calls are idempotent.
#[async_trait]
pub trait Scaler: Send + Sync {
    async fn hold(&self, namespace: &str, sale: &str, request: Request) -> anyhow::Result<ScaleReport>;
    async fn release(&self, namespace: &str, sale: &str) -> anyhow::Result<ScaleReport>;
}

/// The one-process shop has no replicas to scale.
pub struct NotApplicable;

#[async_trait]
impl Scaler for NotApplicable {
    async fn hold(&self, _: &str, _: &str, _: Request) -> anyhow::Result<ScaleReport> {
        Ok(ScaleReport::NotApplicable)
    }
    async fn release(&self, _: &str, _: &str) -> anyhow::Result<ScaleReport> {
        Ok(ScaleReport::NotApplicable)
    }
}

/// A workload's scaling state as read from the object the operator changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub replicas: i32,
    pub annotations: BTreeMap<String, String>,
}

/// The change to make: the replicas (or minimum) and the two annotations (`None`
/// removes one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub replicas: i32,
    pub baseline: Option<String>,
    pub claims: Option<String>,
}

/// `want = Some(n)`: this sale claims `n`; `None`: it lets go. `None` back when nothing
/// needs to change.
pub fn change(current: &Current, sale: &str, want: Option<i32>) -> Option<Change> {
    let mut claims: BTreeMap<String, i32> = current.annotations.get(CLAIMS).and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default();
    let baseline = current.annotations.get(BASELINE).and_then(|b| b.parse::<i32>().ok());
    match want {
        Some(n) => {
            claims.insert(sale.to_owned(), n);
        }
        None => {
            claims.remove(sale);
        }
    }
    let next = if claims.is_empty() {
        // The last claim went: back to the baseline, annotations removed.
        let Some(baseline) = baseline else { return None };
        Change { replicas: baseline, baseline: None, claims: None }
    } else {
        let baseline = baseline.unwrap_or(current.replicas);
        let largest = claims.values().copied().max().unwrap_or(baseline);
        Change { replicas: largest.max(baseline), baseline: Some(baseline.to_string()), claims: Some(serde_json::to_string(&claims).expect("claims serialise")) }
    };
    let unchanged = next.replicas == current.replicas
        && next.baseline.as_ref() == current.annotations.get(BASELINE)
        && next.claims.as_ref() == current.annotations.get(CLAIMS);
    (!unchanged).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(replicas: i32, change: &Option<Change>) -> Current {
        let mut annotations = BTreeMap::new();
        if let Some(c) = change {
            if let Some(b) = &c.baseline {
                annotations.insert(BASELINE.to_owned(), b.clone());
            }
            if let Some(c) = &c.claims {
                annotations.insert(CLAIMS.to_owned(), c.clone());
            }
        }
        Current { replicas, annotations }
    }

    #[test]
    fn one_sale_scales_up_and_restores_the_baseline() {
        let start = Current { replicas: 2, annotations: BTreeMap::new() };
        let up = change(&start, "shop/a", Some(8));
        assert_eq!(up, Some(Change { replicas: 8, baseline: Some("2".into()), claims: Some(r#"{"shop/a":8}"#.into()) }));
        let held = at(8, &up);
        assert_eq!(change(&held, "shop/a", Some(8)), None, "holding again changes nothing");
        let down = change(&held, "shop/a", None);
        assert_eq!(down, Some(Change { replicas: 2, baseline: None, claims: None }));
        assert_eq!(change(&at(2, &None), "shop/a", None), None, "releasing twice changes nothing");
    }

    #[test]
    fn overlapping_sales_take_the_largest_and_restore_only_after_the_last() {
        let a = change(&Current { replicas: 3, annotations: BTreeMap::new() }, "shop/a", Some(8));
        let b = change(&at(8, &a), "shop/b", Some(12));
        assert_eq!(b.as_ref().map(|c| c.replicas), Some(12), "the larger request wins");
        assert_eq!(b.as_ref().and_then(|c| c.baseline.clone()), Some("3".into()), "the baseline is the first one's");
        let a_ends = change(&at(12, &b), "shop/a", None);
        assert_eq!(a_ends.as_ref().map(|c| c.replicas), None.or(Some(12)), "b still holds 12");
        let b_ends = change(&at(12, &a_ends), "shop/b", None);
        assert_eq!(b_ends, Some(Change { replicas: 3, baseline: None, claims: None }), "the last one restores the baseline");
    }

    #[test]
    fn a_request_below_the_baseline_never_scales_down() {
        let up = change(&Current { replicas: 10, annotations: BTreeMap::new() }, "shop/a", Some(4));
        assert_eq!(up.as_ref().map(|c| c.replicas), Some(10));
        let raised_meanwhile = change(&at(10, &up), "shop/a", Some(16));
        assert_eq!(raised_meanwhile.map(|c| c.replicas), Some(16), "a spec change mid-sale moves the claim");
    }
}
