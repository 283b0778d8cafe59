//! Warm-up scaling, shared by overlapping sales. The operator owns the replicas of the
//! order and payment Deployments (or their HPA's or KEDA ScaledObject's minimum, so it
//! never fights the autoscaler): it keeps them at the chart's floor ([`FLOOR`], an
//! annotation Helm writes instead of the field, so `helm upgrade` never conflicts with
//! the operator over it) or, while sales hold the workload, at the largest of their
//! claims ([`CLAIMS`]). On an object without a floor (not from the chart) it remembers
//! the replicas it found before the first sale ([`BASELINE`]) and gives them back when
//! the last claim goes.

pub mod floors;
pub mod kubernetes;

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::crd::ScaledTarget;

pub const BASELINE: &str = "goodsmall.io/baseline-replicas";
pub const CLAIMS: &str = "goodsmall.io/warmup-claims";
/// The replicas (or autoscaler minimum) outside drops, as the chart sets them.
pub const FLOOR: &str = "goodsmall.io/min-replicas";

/// An annotation of the operator's (or the chart's) that does not parse: someone edited
/// it by hand. Nothing is changed until it is fixed.
#[derive(Debug, thiserror::Error)]
#[error("annotation {key}={value:?} does not parse")]
pub struct BadAnnotation {
    pub key: &'static str,
    pub value: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

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
    /// An autoscaler's maximum, which its minimum cannot pass (`i32::MAX` for a
    /// Deployment).
    pub max: i32,
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
pub fn change(current: &Current, sale: &str, want: Option<i32>) -> Result<Option<Change>, BadAnnotation> {
    let mut claims = claims(current)?;
    match want {
        Some(n) => claims.insert(sale.to_owned(), n),
        None => claims.remove(sale),
    };
    plan(current, &claims)
}

/// What the workload should be with the claims it has: the floor (or the remembered
/// baseline) raised to the largest claim. The operator calls it whenever the object
/// changes, so a `helm upgrade` of the floor or a hand edit of the field is corrected
/// at once, during a drop and outside one.
pub fn settle(current: &Current) -> Result<Option<Change>, BadAnnotation> {
    plan(current, &claims(current)?)
}

fn claims(current: &Current) -> Result<BTreeMap<String, i32>, BadAnnotation> {
    match current.annotations.get(CLAIMS) {
        None => Ok(BTreeMap::new()),
        Some(c) => {
            serde_json::from_str(c).map_err(|e| BadAnnotation { key: CLAIMS, value: c.clone(), source: e.into() })
        }
    }
}

fn replicas_annotation(current: &Current, key: &'static str) -> Result<Option<i32>, BadAnnotation> {
    current
        .annotations
        .get(key)
        .map(|v| v.parse::<i32>().map_err(|e| BadAnnotation { key, value: v.clone(), source: e.into() }))
        .transpose()
}

fn plan(current: &Current, claims: &BTreeMap<String, i32>) -> Result<Option<Change>, BadAnnotation> {
    let floor = replicas_annotation(current, FLOOR)?;
    let remembered = replicas_annotation(current, BASELINE)?;
    let next = match (claims.values().copied().max(), floor.or(remembered)) {
        // No claims and nothing known to return to: an object the operator never held.
        (None, None) => return Ok(None),
        // The last claim went: back to the floor or baseline, annotations removed.
        (None, Some(baseline)) => Change { replicas: baseline, baseline: None, claims: None },
        (Some(largest), known) => {
            let baseline = known.unwrap_or(current.replicas);
            Change {
                replicas: largest.max(baseline),
                // The chart's floor needs no copy; without one, remember what was there.
                baseline: floor.is_none().then(|| baseline.to_string()),
                claims: Some(serde_json::to_string(claims).expect("claims serialise")),
            }
        }
    };
    let next = Change { replicas: next.replicas.min(current.max), ..next };
    let unchanged = next.replicas == current.replicas
        && next.baseline.as_ref() == current.annotations.get(BASELINE)
        && next.claims.as_ref() == current.annotations.get(CLAIMS);
    Ok((!unchanged).then_some(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(replicas: i32, annotations: &[(&str, &str)]) -> Current {
        Current {
            replicas,
            max: i32::MAX,
            annotations: annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    /// The object after `change` was written to it.
    fn at(replicas: i32, change: &Option<Change>, floor: Option<&str>) -> Current {
        let mut current = object(replicas, &[]);
        let annotations = &mut current.annotations;
        if let Some(c) = change {
            if let Some(b) = &c.baseline {
                annotations.insert(BASELINE.to_owned(), b.clone());
            }
            if let Some(c) = &c.claims {
                annotations.insert(CLAIMS.to_owned(), c.clone());
            }
        }
        if let Some(f) = floor {
            annotations.insert(FLOOR.to_owned(), f.to_owned());
        }
        current
    }

    fn change_ok(current: &Current, sale: &str, want: Option<i32>) -> Option<Change> {
        change(current, sale, want).expect("annotations parse")
    }

    #[test]
    fn one_sale_scales_up_and_restores_the_baseline() {
        let up = change_ok(&object(2, &[]), "shop/a", Some(8));
        assert_eq!(
            up,
            Some(Change { replicas: 8, baseline: Some("2".into()), claims: Some(r#"{"shop/a":8}"#.into()) })
        );
        let held = at(8, &up, None);
        assert_eq!(change_ok(&held, "shop/a", Some(8)), None, "holding again changes nothing");
        let down = change_ok(&held, "shop/a", None);
        assert_eq!(down, Some(Change { replicas: 2, baseline: None, claims: None }));
        assert_eq!(change_ok(&at(2, &None, None), "shop/a", None), None, "releasing twice changes nothing");
        assert_eq!(settle(&object(5, &[])).unwrap(), None, "an object never held is left alone");
    }

    #[test]
    fn overlapping_sales_take_the_largest_and_restore_only_after_the_last() {
        let a = change_ok(&object(3, &[]), "shop/a", Some(8));
        let b = change_ok(&at(8, &a, None), "shop/b", Some(12));
        assert_eq!(b.as_ref().map(|c| c.replicas), Some(12), "the larger request wins");
        assert_eq!(b.as_ref().and_then(|c| c.baseline.clone()), Some("3".into()), "the baseline is the first one's");
        let a_ends = change_ok(&at(12, &b, None), "shop/a", None);
        assert_eq!(a_ends.as_ref().map(|c| c.replicas), Some(12), "b still holds 12");
        let b_ends = change_ok(&at(12, &a_ends, None), "shop/b", None);
        assert_eq!(
            b_ends,
            Some(Change { replicas: 3, baseline: None, claims: None }),
            "the last one restores the baseline"
        );
    }

    #[test]
    fn a_request_below_the_baseline_never_scales_down() {
        let up = change_ok(&object(10, &[]), "shop/a", Some(4));
        assert_eq!(up.as_ref().map(|c| c.replicas), Some(10));
        let raised_meanwhile = change_ok(&at(10, &up, None), "shop/a", Some(16));
        assert_eq!(raised_meanwhile.map(|c| c.replicas), Some(16), "a spec change mid-sale moves the claim");
    }

    #[test]
    fn the_charts_floor_is_the_baseline_and_is_kept_whatever_changes_the_field() {
        // The chart writes the floor, never the field: the API server's default (1) is
        // what the operator finds on a new object.
        assert_eq!(
            settle(&object(1, &[(FLOOR, "2")])).unwrap(),
            Some(Change { replicas: 2, baseline: None, claims: None })
        );
        let up = change_ok(&object(2, &[(FLOOR, "2")]), "shop/a", Some(8));
        assert_eq!(
            up,
            Some(Change { replicas: 8, baseline: None, claims: Some(r#"{"shop/a":8}"#.into()) }),
            "no baseline copy"
        );
        let held = at(8, &up, Some("2"));
        assert_eq!(settle(&held).unwrap(), None, "held and untouched: nothing to do");
        // `helm upgrade` raises the floor during the drop: the claim still rules.
        assert_eq!(settle(&at(8, &up, Some("3"))).unwrap(), None);
        // Someone (or an old chart's apply) resets the field mid-drop: put back at once.
        assert_eq!(settle(&at(1, &up, Some("2"))).unwrap().map(|c| c.replicas), Some(8));
        // The close returns to the floor the chart has now.
        assert_eq!(
            change_ok(&at(8, &up, Some("3")), "shop/a", None),
            Some(Change { replicas: 3, baseline: None, claims: None })
        );
        // And a later upgrade moves it with no sale running.
        assert_eq!(settle(&object(3, &[(FLOOR, "5")])).unwrap().map(|c| c.replicas), Some(5));
    }

    #[test]
    fn an_upgrade_mid_drop_drops_the_old_operators_baseline_for_the_charts_floor() {
        let old = object(8, &[(BASELINE, "2"), (CLAIMS, r#"{"shop/a":8}"#), (FLOOR, "3")]);
        assert_eq!(
            settle(&old).unwrap(),
            Some(Change { replicas: 8, baseline: None, claims: Some(r#"{"shop/a":8}"#.into()) })
        );
        assert_eq!(
            change_ok(&old, "shop/a", None).map(|c| c.replicas),
            Some(3),
            "the chart's floor, not the remembered 2"
        );
    }

    #[test]
    fn an_autoscalers_minimum_stops_at_its_maximum_without_asking_again() {
        let hpa = Current { max: 3, ..object(2, &[(FLOOR, "2")]) };
        let up = change_ok(&hpa, "shop/a", Some(4));
        assert_eq!(up.as_ref().map(|c| c.replicas), Some(3));
        let held = Current { max: 3, ..at(3, &up, Some("2")) };
        assert_eq!(settle(&held).unwrap(), None, "no patch at every event once at the maximum");
    }

    #[test]
    fn a_hand_edited_annotation_is_an_error_naming_it() {
        let err = settle(&object(2, &[(FLOOR, "two")])).unwrap_err();
        assert_eq!((err.key, err.value.as_str()), (FLOOR, "two"));
        let err = change(&object(2, &[(CLAIMS, "{")]), "shop/a", Some(3)).unwrap_err();
        assert_eq!(err.key, CLAIMS);
    }
}
