//! The operator's own Prometheus metrics: reconciles, failures by reason, duration, and
//! how many sales are in each phase.

use std::{collections::HashMap, sync::Mutex, time::Instant};

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::crd::Phase;

pub struct Metrics {
    registry: Registry,
    pub reconciliations: IntCounter,
    pub failures: IntCounterVec,
    duration: HistogramVec,
    sales: IntGaugeVec,
    phases: Mutex<HashMap<String, Phase>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let reconciliations = IntCounter::new("goodsmall_operator_reconciliations_total", "FlashSale reconciles started").unwrap();
        let failures = IntCounterVec::new(Opts::new("goodsmall_operator_reconcile_errors_total", "FlashSale reconciles that failed, by reason"), &["reason"]).unwrap();
        let buckets = vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
        let duration = HistogramVec::new(HistogramOpts::new("goodsmall_operator_reconcile_duration_seconds", "FlashSale reconcile duration").buckets(buckets), &[]).unwrap();
        let sales = IntGaugeVec::new(Opts::new("goodsmall_operator_flash_sales", "FlashSales by phase"), &["phase"]).unwrap();
        for m in [Box::new(reconciliations.clone()) as Box<dyn prometheus::core::Collector>, Box::new(failures.clone()), Box::new(duration.clone()), Box::new(sales.clone())] {
            registry.register(m).unwrap();
        }
        for phase in Phase::ALL {
            sales.with_label_values(&[phase.as_str()]).set(0);
        }
        Self { registry, reconciliations, failures, duration, sales, phases: Mutex::default() }
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
        match phase {
            Some(p) => phases.insert(key.to_owned(), p),
            None => phases.remove(key),
        };
        for p in Phase::ALL {
            self.sales.with_label_values(&[p.as_str()]).set(phases.values().filter(|v| **v == p).count() as i64);
        }
    }

    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("metrics encode");
        String::from_utf8(out).expect("metrics are UTF-8")
    }
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
