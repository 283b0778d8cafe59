//! Prometheus metrics shared by every service in a process. One registry per process
//! (so the one-process shop exposes everything on one `/metrics`); per-database and
//! per-route series are told apart by labels.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::db::Database;

const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    db_queries: IntCounterVec,
    db_duration: HistogramVec,
    db_pool: IntGaugeVec,
    kv_ops: IntCounterVec,
    kv_duration: HistogramVec,
    kv_up: prometheus::IntGauge,
    pools: Mutex<Vec<Database>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("goodsmall".into()), None).expect("valid prefix");
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry.register(Box::new(c.clone())).expect("unique metric");
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()), labels)
                .expect("valid metric");
            registry.register(Box::new(h.clone())).expect("unique metric");
            h
        };
        let db_pool = IntGaugeVec::new(Opts::new("db_pool_connections", "Database pool connections by state"), &["db", "state"])
            .expect("valid metric");
        registry.register(Box::new(db_pool.clone())).expect("unique metric");
        // Redis is one multiplexed connection per process (no pool): this says whether
        // it is working, judged by the last operation.
        let kv_up = prometheus::IntGauge::new("kv_connection_up", "1 when the last key-value (Redis) operation succeeded").expect("valid metric");
        registry.register(Box::new(kv_up.clone())).expect("unique metric");
        Self(Arc::new(Inner {
            http_requests: counter("http_requests_total", "HTTP requests by route, method and status", &["route", "method", "status"]),
            http_duration: histogram("http_request_duration_seconds", "HTTP request latency", &["route", "method"]),
            db_queries: counter("db_queries_total", "Database queries by database and query name", &["db", "query"]),
            db_duration: histogram("db_query_duration_seconds", "Database query latency", &["db", "query"]),
            kv_ops: counter("kv_operations_total", "Key-value (Redis) operations by outcome", &["op", "outcome"]),
            kv_duration: histogram("kv_operation_duration_seconds", "Key-value (Redis) latency", &["op"]),
            db_pool,
            kv_up,
            registry,
            pools: Mutex::default(),
        }))
    }

    /// For services that define metrics of their own.
    pub fn registry(&self) -> &Registry {
        &self.0.registry
    }

    /// Reports this database's pool in `goodsmall_db_pool_connections`.
    pub fn track_pool(&self, db: &Database) {
        self.0.pools.lock().unwrap_or_else(|p| p.into_inner()).push(db.clone());
    }

    pub fn observe_db(&self, db: &str, query: &str, elapsed: Duration) {
        self.0.db_queries.with_label_values(&[db, query]).inc();
        self.0.db_duration.with_label_values(&[db, query]).observe(elapsed.as_secs_f64());
    }

    pub fn db_queries(&self, db: &str, query: &str) -> u64 {
        self.0.db_queries.with_label_values(&[db, query]).get()
    }

    pub fn observe_kv(&self, op: &str, ok: bool, elapsed: Duration) {
        self.0.kv_ops.with_label_values(&[op, if ok { "ok" } else { "error" }]).inc();
        self.0.kv_duration.with_label_values(&[op]).observe(elapsed.as_secs_f64());
        self.0.kv_up.set(i64::from(ok));
    }

    /// The Prometheus text exposition of everything registered.
    pub fn render(&self) -> String {
        for db in self.0.pools.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let (size, idle) = db.pool_stats();
            self.0.db_pool.with_label_values(&[db.name(), "idle"]).set(idle as i64);
            self.0.db_pool.with_label_values(&[db.name(), "in_use"]).set((size as usize).saturating_sub(idle) as i64);
        }
        let mut buffer = Vec::new();
        let _ = TextEncoder::new().encode(&self.0.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// Records every request by its route template (never the raw path, to bound cardinality).
pub async fn track_http(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let inner = &metrics.0;
    inner.http_duration.with_label_values(&[&route, &method]).observe(started.elapsed().as_secs_f64());
    inner
        .http_requests
        .with_label_values(&[&route, &method, response.status().as_str()])
        .inc();
    response
}

pub async fn render(State(metrics): State<Metrics>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics.render())
}
