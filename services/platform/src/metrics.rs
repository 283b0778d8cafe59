//! Prometheus metrics shared by every service in a process. One registry per process
//! (so the one-process shop exposes everything on one `/metrics`); per-database and
//! per-route series are told apart by labels.

use std::{
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use axum::{
    extract::State,
    http::{Method, StatusCode},
    response::IntoResponse,
};
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::db::Database;

const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

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
    drop: DropMetrics,
    /// Expositions of other registries served on the same `/metrics` (the one-process
    /// shop's FlashSale operator).
    extra: Mutex<Vec<Box<dyn Fn() -> String + Send + Sync>>>,
}

/// What an SRE needs to tell whether a drop is healthy (docs/metrics.md lists them all).
/// Per-sale series carry `sale_id` only while the sale is active; every other label has
/// a fixed set of values.
pub struct DropMetrics {
    sale_remaining: IntGaugeVec,
    sale_reserved: IntGaugeVec,
    sale_sold: IntGaugeVec,
    sale_stock: IntGaugeVec,
    sale_limit: IntGaugeVec,
    purchases: IntCounterVec,
    sold_out_answers: IntCounterVec,
    commit_batch: Histogram,
    commit_duration: HistogramVec,
    outbox_pending: IntGaugeVec,
    outbox_oldest: GaugeVec,
    outbox_published: IntCounterVec,
    outbox_failures: IntCounterVec,
    order_settled: HistogramVec,
    payments: IntCounterVec,
    orphans_released: IntCounter,
}

/// Purchase outcomes besides the refusal codes (`goodsmall_purchases_total{outcome}`).
pub const PURCHASE_ACCEPTED: &str = "accepted";
pub const PURCHASE_REPEATED: &str = "repeated";
pub const PURCHASE_ERROR: &str = "error";
pub const SOLD_OUT_ANSWERS: [&str; 3] = ["not_flagged", "refused_from_memory", "first_answer_read"];
pub const PAYMENT_OUTCOMES: [&str; 5] = ["approved", "declined", "expired", "canceled", "refunded"];
pub const ORDER_TERMINAL: [&str; 3] = ["COMPLETE", "FAILED", "CANCELED"];

/// Consumer-side series live in the Kafka consumer tasks, which are not handed a
/// [`Metrics`]; they are process-wide and registered into every registry.
struct ConsumerMetrics {
    lag: IntGaugeVec,
    failures: IntCounterVec,
    retries: IntCounterVec,
}

fn consumer_metrics() -> &'static ConsumerMetrics {
    static METRICS: std::sync::OnceLock<ConsumerMetrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(|| ConsumerMetrics {
        lag: IntGaugeVec::new(
            Opts::new(
                "kafka_consumer_lag",
                "Messages in a partition not yet handled by the consumer group (high watermark minus next offset)",
            ),
            &["group", "topic", "partition"],
        )
        .expect("valid metric"),
        failures: IntCounterVec::new(
            Opts::new(
                "event_handler_failures_total",
                "Event handler calls that failed (retried until they succeed), by consumer group and event kind",
            ),
            &["group", "kind"],
        )
        .expect("valid metric"),
        retries: IntCounterVec::new(
            Opts::new(
                "event_handler_retries_total",
                "Event handler calls repeated after a failure, by consumer group and event kind",
            ),
            &["group", "kind"],
        )
        .expect("valid metric"),
    })
}

/// Gives a consumer group's failure and retry series their zero for every event kind, so
/// a rate over them is 0, not absent, until something fails.
pub fn consumer_started(group: &str, kinds: &[&str]) {
    let m = consumer_metrics();
    for kind in kinds {
        m.failures.with_label_values(&[group, kind]);
        m.retries.with_label_values(&[group, kind]);
    }
}

/// A Kafka consumer group's lag on one partition, after a handled batch.
pub fn record_consumer_lag(group: &str, topic: &str, partition: i32, lag: i64) {
    consumer_metrics().lag.with_label_values(&[group, topic, &partition.to_string()]).set(lag.max(0));
}

/// An event handler failed for events of `kind`; `retrying` when it will be called again.
pub fn record_handler_failure(group: &str, kind: &str, retrying: bool) {
    let m = consumer_metrics();
    m.failures.with_label_values(&[group, kind]).inc();
    if retrying {
        m.retries.with_label_values(&[group, kind]).inc();
    }
}

impl DropMetrics {
    fn new(registry: &Registry) -> Self {
        fn reg<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
            registry.register(Box::new(c.clone())).expect("unique metric");
            c
        }
        let gauge = |name: &str, help: &str| {
            reg(registry, IntGaugeVec::new(Opts::new(name, help), &["sale_id"]).expect("valid metric"))
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            reg(registry, IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
        };
        let seconds = |name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
            reg(
                registry,
                HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels)
                    .expect("valid metric"),
            )
        };
        let consumer = consumer_metrics();
        for c in [
            Box::new(consumer.lag.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(consumer.failures.clone()),
            Box::new(consumer.retries.clone()),
        ] {
            registry.register(c).expect("unique metric");
        }
        let metrics = Self {
            sale_remaining: gauge("sale_remaining", "Units of an active sale still on offer"),
            sale_reserved: gauge("sale_reserved", "Units of an active sale reserved by orders awaiting payment"),
            sale_sold: gauge("sale_sold", "Units of an active sale paid for"),
            sale_stock: gauge("sale_stock", "Units an active sale started with"),
            sale_limit: gauge("sale_limit", "Units one shopper may buy in an active sale"),
            purchases: counter(
                "purchases_total",
                "Sale purchases by outcome: accepted, repeated, error, or the \
                refusal code",
                &["outcome"],
            ),
            sold_out_answers: counter(
                "sold_out_flag_answers_total",
                "The replica's sold-out flag on the purchase path: not_flagged (the engine decides), \
                    refused_from_memory, first_answer_read",
                &["answer"],
            ),
            commit_batch: reg(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "order_commit_batch_size",
                        "Purchases committed together by \
                    the group-commit writer",
                    )
                    .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]),
                )
                .expect("valid metric"),
            ),
            commit_duration: seconds(
                "order_commit_duration_seconds",
                "Group-commit transaction latency by outcome",
                &["outcome"],
                LATENCY_BUCKETS,
            ),
            outbox_pending: reg(
                registry,
                IntGaugeVec::new(
                    Opts::new(
                        "outbox_pending",
                        "Outbox rows not yet published, \
                by database",
                    ),
                    &["db"],
                )
                .expect("valid metric"),
            ),
            outbox_oldest: reg(
                registry,
                GaugeVec::new(
                    Opts::new(
                        "outbox_oldest_age_seconds",
                        "Age of the oldest \
                unpublished outbox row (0 when none)",
                    ),
                    &["db"],
                )
                .expect("valid metric"),
            ),
            outbox_published: counter("outbox_published_total", "Outbox rows the relay published", &["db"]),
            outbox_failures: counter(
                "outbox_publish_failures_total",
                "Outbox relay passes that failed (retried)",
                &["db"],
            ),
            order_settled: seconds(
                "order_settle_duration_seconds",
                "Time from a sale order's creation to its terminal state, by that state",
                &["status"],
                &[0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0],
            ),
            payments: counter(
                "payments_total",
                "Payments settled, by outcome: approved, declined, expired, canceled, \
                refunded",
                &["outcome"],
            ),
            orphans_released: reg(
                registry,
                IntCounter::new(
                    "orphan_reservations_released_total",
                    "Reservations \
                without an order that the sweep recorded as cancelled",
                )
                .expect("valid metric"),
            ),
        };
        // Every bounded label value starts at 0, so a rate over it is 0 rather than absent.
        // The refusal codes are the stock engine's (`goodsmall_sale::Refusal::ALL`): the
        // order service adds them with `purchase_outcomes`.
        metrics.purchase_outcomes([PURCHASE_ACCEPTED, PURCHASE_REPEATED, PURCHASE_ERROR]);
        for answer in SOLD_OUT_ANSWERS {
            metrics.sold_out_answers.with_label_values(&[answer]);
        }
        for outcome in PAYMENT_OUTCOMES {
            metrics.payments.with_label_values(&[outcome]);
        }
        for status in ORDER_TERMINAL {
            metrics.order_settled.with_label_values(&[status]);
        }
        for outcome in ["ok", "error"] {
            metrics.commit_duration.with_label_values(&[outcome]);
        }
        metrics
    }

    /// Gives a database's outbox series their first values (the relay calls it at start).
    pub fn outbox_started(&self, db: &str) {
        self.outbox_published.with_label_values(&[db]);
        self.outbox_failures.with_label_values(&[db]);
        self.outbox_backlog(db, 0, 0.0);
    }

    /// Sets an active sale's gauges.
    pub fn set_sale(&self, sale_id: i64, stock: i64, remaining: i64, reserved: i64, sold: i64, limit: i64) {
        let id = sale_id.to_string();
        self.sale_stock.with_label_values(&[&id]).set(stock);
        self.sale_remaining.with_label_values(&[&id]).set(remaining);
        self.sale_reserved.with_label_values(&[&id]).set(reserved);
        self.sale_sold.with_label_values(&[&id]).set(sold);
        self.sale_limit.with_label_values(&[&id]).set(limit);
    }

    /// Drops a sale that is no longer active from the per-sale gauges.
    pub fn remove_sale(&self, sale_id: i64) {
        let id = sale_id.to_string();
        for g in [&self.sale_stock, &self.sale_remaining, &self.sale_reserved, &self.sale_sold, &self.sale_limit] {
            let _ = g.remove_label_values(&[&id]);
        }
    }

    /// Starts these `goodsmall_purchases_total` outcomes at 0 (besides accepted,
    /// repeated and error: the stock engine's refusal codes).
    pub fn purchase_outcomes<'a>(&self, outcomes: impl IntoIterator<Item = &'a str>) {
        for outcome in outcomes {
            self.purchases.with_label_values(&[outcome]);
        }
    }

    pub fn purchase(&self, outcome: &str) {
        self.purchases.with_label_values(&[outcome]).inc();
    }

    pub fn sold_out_answer(&self, answer: &str) {
        self.sold_out_answers.with_label_values(&[answer]).inc();
    }

    pub fn commit(&self, batch: usize, ok: bool, elapsed: Duration) {
        self.commit_batch.observe(batch as f64);
        self.commit_duration.with_label_values(&[if ok { "ok" } else { "error" }]).observe(elapsed.as_secs_f64());
    }

    pub fn outbox_backlog(&self, db: &str, pending: i64, oldest_age_secs: f64) {
        self.outbox_pending.with_label_values(&[db]).set(pending);
        self.outbox_oldest.with_label_values(&[db]).set(oldest_age_secs);
    }

    pub fn outbox_relayed(&self, db: &str, published: usize, ok: bool) {
        self.outbox_published.with_label_values(&[db]).inc_by(published as u64);
        if !ok {
            self.outbox_failures.with_label_values(&[db]).inc();
        }
    }

    pub fn order_settled(&self, status: &str, elapsed_secs: f64) {
        self.order_settled.with_label_values(&[status]).observe(elapsed_secs.max(0.0));
    }

    pub fn payment(&self, outcome: &str) {
        self.payments.with_label_values(&[outcome]).inc();
    }

    pub fn orphans_released(&self, n: usize) {
        self.orphans_released.inc_by(n as u64);
    }
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
        let db_pool =
            IntGaugeVec::new(Opts::new("db_pool_connections", "Database pool connections by state"), &["db", "state"])
                .expect("valid metric");
        registry.register(Box::new(db_pool.clone())).expect("unique metric");
        // Redis is one multiplexed connection per process (no pool): this says whether
        // it is working, judged by the last operation.
        let kv_up =
            prometheus::IntGauge::new("kv_connection_up", "1 when the last key-value (Redis) operation succeeded")
                .expect("valid metric");
        registry.register(Box::new(kv_up.clone())).expect("unique metric");
        Self(Arc::new(Inner {
            http_requests: counter(
                "http_requests_total",
                "HTTP requests by route, method and status",
                &["route", "method", "status"],
            ),
            http_duration: histogram("http_request_duration_seconds", "HTTP request latency", &["route", "method"]),
            db_queries: counter("db_queries_total", "Database queries by database and query name", &["db", "query"]),
            db_duration: histogram("db_query_duration_seconds", "Database query latency", &["db", "query"]),
            kv_ops: counter("kv_operations_total", "Key-value (Redis) operations by outcome", &["op", "outcome"]),
            kv_duration: histogram("kv_operation_duration_seconds", "Key-value (Redis) latency", &["op"]),
            db_pool,
            kv_up,
            drop: DropMetrics::new(&registry),
            registry,
            pools: Mutex::default(),
            extra: Mutex::default(),
        }))
    }

    /// The drop's own series (sales, purchases, saga).
    pub fn drops(&self) -> &DropMetrics {
        &self.0.drop
    }

    /// Appends another exposition (in the text format, names of its own) to `/metrics`.
    pub fn also_render(&self, render: impl Fn() -> String + Send + Sync + 'static) {
        self.0.extra.lock().unwrap_or_else(|p| p.into_inner()).push(Box::new(render));
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
        let mut text = String::from_utf8(buffer).unwrap_or_default();
        for render in self.0.extra.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            text.push_str(&render());
        }
        text
    }
}

/// The HTTP series of one routed endpoint: the router layers every route and method
/// separately, and each layered endpoint keeps its series here, resolved on its first
/// request. A request then costs two atomic updates: no label look-up, no allocation.
/// Labels are the route template (never the raw path, to bound cardinality), the method
/// and the status.
#[derive(Clone)]
pub struct HttpRouteSeries {
    metrics: Metrics,
    resolved: Arc<OnceLock<RouteSeries>>,
}

struct RouteSeries {
    route: Box<str>,
    method: Method,
    duration: Histogram,
    /// `http_requests_total` of the statuses in [`STATUSES`], by position.
    statuses: [OnceLock<IntCounter>; STATUSES.len()],
}

/// The statuses the API answers; any other is counted through the label look-up.
const STATUSES: [u16; 24] = [
    200, 201, 202, 204, 301, 302, 304, 400, 401, 403, 404, 405, 408, 409, 410, 413, 415, 422, 429, 500, 501, 502, 503,
    504,
];

impl Metrics {
    /// A fresh per-endpoint cache of the HTTP series (see [`HttpRouteSeries`]).
    pub fn http_route_series(&self) -> HttpRouteSeries {
        HttpRouteSeries { metrics: self.clone(), resolved: Arc::default() }
    }

    fn observe_http(&self, route: &str, method: &str, status: StatusCode, seconds: f64) {
        self.0.http_duration.with_label_values(&[route, method]).observe(seconds);
        self.0.http_requests.with_label_values(&[route, method, status.as_str()]).inc();
    }
}

impl HttpRouteSeries {
    /// One answered request; `route` is its matched route template (`None`: unmatched).
    pub fn observe(&self, route: Option<&str>, method: &Method, status: StatusCode, elapsed: Duration) {
        let route = route.unwrap_or("unmatched");
        let seconds = elapsed.as_secs_f64();
        let inner = &self.metrics.0;
        let series = self.resolved.get_or_init(|| RouteSeries {
            route: route.into(),
            method: method.clone(),
            duration: inner.http_duration.with_label_values(&[route, method.as_str()]),
            statuses: Default::default(),
        });
        // A fallback serves many routes and methods: only its first is cached.
        if *series.route != *route || series.method != *method {
            return self.metrics.observe_http(route, method.as_str(), status, seconds);
        }
        series.duration.observe(seconds);
        match STATUSES.iter().position(|s| *s == status.as_u16()) {
            Some(i) => series.statuses[i]
                .get_or_init(|| inner.http_requests.with_label_values(&[route, method.as_str(), status.as_str()]))
                .inc(),
            None => inner.http_requests.with_label_values(&[route, method.as_str(), status.as_str()]).inc(),
        }
    }
}

pub async fn render(State(metrics): State<Metrics>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics.render())
}
