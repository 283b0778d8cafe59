//! Whether the warm-up's capacity is really there: the replicas a sale asked for are
//! worth nothing until their pods are Ready. A pure reading of what the scaler found
//! (asked and Ready per Deployment), so that the `Scaled` condition, the
//! `CapacityNotReady` Event and the metrics all say the same thing.

use crate::crd::{FlashSaleStatus, Phase, ScaledTarget};

pub const READY: &str = "WarmupReplicasReady";
pub const PENDING: &str = "WarmupReplicasPending";
/// The Warning Event of a sale that opens (or is open) short of its capacity.
pub const NOT_READY_EVENT: &str = "CapacityNotReady";

/// The `Scaled` condition a set of held targets amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    pub ready: bool,
    pub reason: &'static str,
    /// `goodsmall-order 3/3 ready, goodsmall-payment 1/3 ready`.
    pub message: String,
}

pub fn of(targets: &[ScaledTarget]) -> Capacity {
    let ready = targets.iter().all(|t| t.ready >= t.replicas);
    let message = targets
        .iter()
        .map(|t| format!("{} {}/{} ready", t.deployment, t.ready, t.replicas))
        .collect::<Vec<_>>()
        .join(", ");
    Capacity { ready, reason: if ready { READY } else { PENDING }, message }
}

/// Whether to warn now: the sale is open short of capacity, and either it just opened
/// or the capacity was there at the last reconcile (one Event per shortfall, not one
/// per reconcile).
pub fn warn_not_ready(old: &FlashSaleStatus, phase: Option<Phase>, capacity: &Capacity) -> bool {
    let was_short_and_open = old.phase == Some(Phase::Open)
        && old.conditions.iter().any(|c| c.type_ == crate::reconcile::SCALED && c.reason == PENDING);
    phase == Some(Phase::Open) && !capacity.ready && !was_short_and_open
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::{crd::Condition, reconcile::SCALED};

    fn target(deployment: &str, asked: i32, ready: i32) -> ScaledTarget {
        ScaledTarget {
            kind: "HorizontalPodAutoscaler".into(),
            name: deployment.into(),
            replicas: asked,
            deployment: deployment.into(),
            ready,
        }
    }

    fn status(phase: Phase, reason: &str) -> FlashSaleStatus {
        let scaled = Condition {
            type_: SCALED.into(),
            status: if reason == READY { "True" } else { "False" }.into(),
            reason: reason.into(),
            message: String::new(),
            last_transition_time: Utc::now(),
            observed_generation: None,
        };
        FlashSaleStatus { phase: Some(phase), conditions: vec![scaled], ..Default::default() }
    }

    #[test]
    fn capacity_is_there_only_when_every_deployment_has_its_ready_pods() {
        let pending = of(&[target("goodsmall-order", 3, 3), target("goodsmall-payment", 3, 1)]);
        assert_eq!(
            pending,
            Capacity {
                ready: false,
                reason: PENDING,
                message: "goodsmall-order 3/3 ready, goodsmall-payment 1/3 ready".into()
            }
        );
        let ready = of(&[target("goodsmall-order", 3, 4), target("goodsmall-payment", 3, 3)]);
        assert_eq!((ready.ready, ready.reason), (true, READY), "more Ready pods than asked (an HPA's) is enough");
    }

    #[test]
    fn a_shortfall_is_announced_once_when_the_sale_is_open() {
        let short = of(&[target("goodsmall-order", 3, 1)]);
        let enough = of(&[target("goodsmall-order", 3, 3)]);
        assert!(
            !warn_not_ready(&status(Phase::WarmingUp, PENDING), Some(Phase::WarmingUp), &short),
            "still warming up: no warning yet"
        );
        assert!(warn_not_ready(&status(Phase::WarmingUp, PENDING), Some(Phase::Open), &short), "opened short");
        assert!(!warn_not_ready(&status(Phase::Open, PENDING), Some(Phase::Open), &short), "already announced");
        assert!(warn_not_ready(&status(Phase::Open, READY), Some(Phase::Open), &short), "pods lost during the sale");
        assert!(
            !warn_not_ready(&status(Phase::WarmingUp, READY), Some(Phase::Open), &enough),
            "opened with its capacity"
        );
    }
}
