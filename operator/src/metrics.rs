//! The operator's own Prometheus metrics: reconciles, failures by reason, duration, and
//! how many sales are in each phase.

use std::{collections::HashMap, sync::Mutex, time::Instant};

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::crd::Phase;

pub struct Metrics {
    registry: Registry,
    /// The stock engine's series (`goodsmall_stock_engine_*`), named as in the services.
    engine_registry: Registry,
    sale_phase: IntGaugeVec,
    pub reconciliations: IntCounter,
    pub failures: IntCounterVec,
    duration: HistogramVec,
    sales: IntGaugeVec,
    phases: Mutex<HashMap<String, Phase>>,
    warmup_replicas: IntGaugeVec,
    /// The Deployments each sale's `warmup_replicas` series name, to drop them.
    warmed: Mutex<HashMap<String, Vec<String>>>,
    queue: IntGaugeVec,
}

/// The `state` label of `goodsmall_operator_flash_sale_queue`.
pub const QUEUE_STATES: [&str; 4] = ["waiting", "admitted", "expired", "in_turn"];

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let reconciliations =
            IntCounter::new("goodsmall_operator_reconciliations_total", "FlashSale reconciles started").unwrap();
        let failures = IntCounterVec::new(
            Opts::new("goodsmall_operator_reconcile_errors_total", "FlashSale reconciles that failed, by reason"),
            &["reason"],
        )
        .unwrap();
        let buckets = vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
        let duration = HistogramVec::new(
            HistogramOpts::new("goodsmall_operator_reconcile_duration_seconds", "FlashSale reconcile duration")
                .buckets(buckets),
            &[],
        )
        .unwrap();
        let sales =
            IntGaugeVec::new(Opts::new("goodsmall_operator_flash_sales", "FlashSales by phase"), &["phase"]).unwrap();
        for m in [
            Box::new(reconciliations.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(failures.clone()),
            Box::new(duration.clone()),
            Box::new(sales.clone()),
        ] {
            registry.register(m).unwrap();
        }
        let sale_phase = IntGaugeVec::new(
            Opts::new(
                "goodsmall_operator_flash_sale_phase",
                "1 for each FlashSale's current phase (label flash_sale = namespace/name)",
            ),
            &["flash_sale", "phase"],
        )
        .unwrap();
        registry.register(Box::new(sale_phase.clone())).unwrap();
        for phase in Phase::ALL {
            sales.with_label_values(&[phase.as_str()]).set(0);
        }
        // Every reason `goodsmall_operator_reconcile_errors_total` may carry starts at 0.
        for reason in ["kube", "sale", "finalizer", "settling", "local"] {
            failures.with_label_values(&[reason]);
        }
        let warmup_replicas = IntGaugeVec::new(
            Opts::new(
                "goodsmall_operator_warmup_replicas",
                "Per FlashSale and scaled Deployment: pods the warm-up \
                asked for (state=asked) and Ready ones (state=ready)",
            ),
            &["flash_sale", "deployment", "state"],
        )
        .unwrap();
        registry.register(Box::new(warmup_replicas.clone())).unwrap();
        let queue = IntGaugeVec::new(
            Opts::new(
                "goodsmall_operator_flash_sale_queue",
                "Per FlashSale with a waiting room: shoppers waiting (state=waiting), admitted so far \
                (admitted), turns ended unused (expired), admitted and not bought yet (in_turn)",
            ),
            &["flash_sale", "state"],
        )
        .unwrap();
        registry.register(Box::new(queue.clone())).unwrap();
        let engine_registry = Registry::new_custom(Some("goodsmall".into()), None).expect("valid prefix");
        Self {
            registry,
            engine_registry,
            sale_phase,
            reconciliations,
            failures,
            duration,
            sales,
            phases: Mutex::default(),
            warmup_replicas,
            warmed: Mutex::default(),
            queue,
        }
    }
}

impl Metrics {
    /// Counts a reconcile; its duration is recorded when the guard drops.
    pub fn reconcile(&self) -> ReconcileTimer<'_> {
        self.reconciliations.inc();
        ReconcileTimer { metrics: self, start: Instant::now() }
    }

    pub fn failure(&self, reason: &str) {
        self.failures.with_label_values(&[reason]).inc();
    }

    /// Records a sale's phase (`None`: deleted) and recounts the gauge.
    pub fn phase(&self, key: &str, phase: Option<Phase>) {
        let mut phases = self.phases.lock().unwrap_or_else(|p| p.into_inner());
        let before = match phase {
            Some(p) => phases.insert(key.to_owned(), p),
            None => phases.remove(key),
        };
        if let Some(old) = before.filter(|old| Some(*old) != phase) {
            let _ = self.sale_phase.remove_label_values(&[key, old.as_str()]);
        }
        if let Some(p) = phase {
            self.sale_phase.with_label_values(&[key, p.as_str()]).set(1);
        }
        for p in Phase::ALL {
            self.sales.with_label_values(&[p.as_str()]).set(phases.values().filter(|v| **v == p).count() as i64);
        }
    }

    /// Records what a sale's warm-up asked of each Deployment and how many of its pods
    /// are Ready (`targets` empty: the sale holds nothing, its series go).
    pub fn capacity(&self, key: &str, targets: &[crate::crd::ScaledTarget]) {
        let mut warmed = self.warmed.lock().unwrap_or_else(|p| p.into_inner());
        for deployment in warmed.remove(key).unwrap_or_default() {
            for state in ["asked", "ready"] {
                let _ = self.warmup_replicas.remove_label_values(&[key, &deployment, state]);
            }
        }
        for t in targets {
            self.warmup_replicas.with_label_values(&[key, &t.deployment, "asked"]).set(t.replicas.into());
            self.warmup_replicas.with_label_values(&[key, &t.deployment, "ready"]).set(t.ready.into());
        }
        if !targets.is_empty() {
            warmed.insert(key.to_owned(), targets.iter().map(|t| t.deployment.clone()).collect());
        }
    }

    /// Records a sale's waiting room (`None`: it has none, or the sale is gone: its series go).
    pub fn queue(&self, key: &str, queue: Option<&crate::crd::QueueStatus>) {
        match queue {
            Some(q) => {
                for (state, value) in QUEUE_STATES.into_iter().zip([q.waiting, q.admitted, q.expired, q.in_turn]) {
                    self.queue.with_label_values(&[key, state]).set(value);
                }
            }
            None => {
                for state in QUEUE_STATES {
                    let _ = self.queue.remove_label_values(&[key, state]);
                }
            }
        }
    }

    /// Where the operator's stock engine registers its series
    /// (`StockEngine::with_metrics`).
    pub fn engine_registry(&self) -> &Registry {
        &self.engine_registry
    }

    pub fn render(&self) -> String {
        let mut families = self.registry.gather();
        families.extend(self.engine_registry.gather());
        let mut out = Vec::new();
        TextEncoder::new().encode(&families, &mut out).expect("metrics encode");
        String::from_utf8(out).expect("metrics are UTF-8")
    }

    /// Times and counts one reconcile of the one-process operator; a failure counts
    /// under reason `local`.
    pub async fn timed<T>(&self, reconcile: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
        let _timer = self.reconcile();
        let result = reconcile.await;
        if result.is_err() {
            self.failure("local");
        }
        result
    }
}

/// The one-process shop's operator (`local`): one per process, rendered on the shop's
/// own `/metrics` next to the services' series.
pub fn local() -> &'static Metrics {
    static LOCAL: std::sync::OnceLock<Metrics> = std::sync::OnceLock::new();
    LOCAL.get_or_init(Metrics::default)
}

pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    start: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics.duration.with_label_values(&[] as &[&str]).observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{QueueState, QueueStatus};

    #[test]
    fn a_sales_waiting_room_is_a_series_per_count_until_it_goes() {
        let metrics = Metrics::default();
        let queue = QueueStatus { state: QueueState::Admitting, waiting: 40, admitted: 10, expired: 2, in_turn: 3 };
        metrics.queue("shop/drop", Some(&queue));
        let text = metrics.render();
        for line in [
            r#"goodsmall_operator_flash_sale_queue{flash_sale="shop/drop",state="waiting"} 40"#,
            r#"goodsmall_operator_flash_sale_queue{flash_sale="shop/drop",state="admitted"} 10"#,
            r#"goodsmall_operator_flash_sale_queue{flash_sale="shop/drop",state="expired"} 2"#,
            r#"goodsmall_operator_flash_sale_queue{flash_sale="shop/drop",state="in_turn"} 3"#,
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        metrics.queue("shop/drop", None);
        assert!(!metrics.render().contains("goodsmall_operator_flash_sale_queue{"), "gone with the room");
    }
}
