//! The stock engine: where purchases are decided. Flash-sale stock and regular product
//! stock, in Redis (each decision one Lua script, run with EVALSHA) or in-process for
//! the one-process default, with the same semantics (the contract tests run both).
//! The services and the FlashSale operator share this crate and its key layout.

pub mod keys;
mod memory;
mod memory_queue;
pub mod queue;
mod redis_engine;
mod redis_queue;
mod sold_out;
mod types;

pub use sold_out::SoldOutFlags;
pub use types::*;

fn check_terms(def: &SaleDefinition) -> Result<(), EngineError> {
    if def.stock < 0 {
        return Err(EngineError::InvalidInput("sale stock below 0"));
    }
    if def.per_user_limit < 1 {
        return Err(EngineError::InvalidInput("per-user limit below 1"));
    }
    if def.closes_at_ms <= def.opens_at_ms {
        return Err(EngineError::InvalidInput("sale closes before it opens"));
    }
    if let Some(q) = def.queue {
        if q.pre_queue_ms < 0 || q.admit_per_second < 1 || q.turn_ttl_ms < 1 {
            return Err(EngineError::InvalidInput(
                "a waiting room needs a pre-queue ≥ 0, a rate ≥ 1 and a turn ≥ 1 ms",
            ));
        }
    }
    Ok(())
}

#[derive(Clone)]
pub struct StockEngine(Backend, Option<std::sync::Arc<EngineMetrics>>);

#[derive(Clone)]
enum Backend {
    // Boxed: a ConnectionManager is large and the engine is cloned per request.
    Redis(Box<redis_engine::RedisEngine>),
    Memory(memory::MemoryEngine),
}

/// Runs the call on the backend, counted and timed under `$op` when metrics are on.
macro_rules! dispatch {
    ($self:ident, $op:literal, $engine:ident => $call:expr) => {{
        let started = std::time::Instant::now();
        let result = match &$self.0 {
            Backend::Redis($engine) => $call,
            Backend::Memory($engine) => $call,
        };
        if let Some(metrics) = &$self.1 {
            metrics.observe($op, result.is_ok(), started.elapsed());
        }
        result
    }};
}

/// `goodsmall_stock_engine_calls_total{op,outcome}` and
/// `goodsmall_stock_engine_call_duration_seconds{op}`: each engine operation is one Lua
/// script (reserve, settle, restore, …) or one read in Redis; the in-process engine is
/// timed the same way.
struct EngineMetrics {
    calls: prometheus::IntCounterVec,
    duration: prometheus::HistogramVec,
}

/// Every operation the engine counts (the `op` label's values).
pub const ENGINE_OPS: [&str; 22] = [
    "load_sale",
    "restore_sale",
    "remove_sale",
    "close_sale",
    "set_halted",
    "counters",
    "held_by",
    "first_answer",
    "buyers",
    "buyer_count",
    "open_reservations",
    "reserve",
    "release",
    "confirm",
    "set_product_stock",
    "seed_product_stock",
    "product_stock",
    "reserve_products",
    "release_products",
    "join_queue",
    "queue_place",
    "queue_counts",
];

impl EngineMetrics {
    fn observe(&self, op: &str, ok: bool, elapsed: std::time::Duration) {
        self.calls.with_label_values(&[op, if ok { "ok" } else { "error" }]).inc();
        self.duration.with_label_values(&[op]).observe(elapsed.as_secs_f64());
    }
}

impl StockEngine {
    pub fn redis(conn: redis::aio::ConnectionManager) -> Self {
        Self(Backend::Redis(Box::new(redis_engine::RedisEngine::new(conn))), None)
    }

    /// Redis when the process has a Redis connection, else the in-process engine.
    pub fn for_connection(conn: Option<redis::aio::ConnectionManager>) -> Self {
        conn.map_or_else(Self::memory, Self::redis)
    }

    pub fn memory() -> Self {
        Self(Backend::Memory(memory::MemoryEngine::default()), None)
    }

    /// Counts and times every operation in `registry` (names without the `goodsmall_`
    /// prefix: the services' registries add it). Clones share the series.
    pub fn with_metrics(mut self, registry: &prometheus::Registry) -> Self {
        const BUCKETS: &[f64] = &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];
        let calls = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "stock_engine_calls_total",
                "Stock engine operations (Lua scripts and reads) by operation and outcome",
            ),
            &["op", "outcome"],
        )
        .expect("valid metric");
        let duration = prometheus::HistogramVec::new(
            prometheus::HistogramOpts::new(
                "stock_engine_call_duration_seconds",
                "Stock engine operation latency by operation",
            )
            .buckets(BUCKETS.to_vec()),
            &["op"],
        )
        .expect("valid metric");
        if registry.register(Box::new(calls.clone())).is_ok() && registry.register(Box::new(duration.clone())).is_ok() {
            for op in ENGINE_OPS {
                calls.with_label_values(&[op, "ok"]);
                calls.with_label_values(&[op, "error"]);
                duration.with_label_values(&[op]);
            }
            self.1 = Some(std::sync::Arc::new(EngineMetrics { calls, duration }));
        }
        self
    }

    pub fn backend_name(&self) -> &'static str {
        match self.0 {
            Backend::Redis(_) => "redis",
            Backend::Memory(_) => "memory",
        }
    }

    /// Idempotent pre-load or update of a sale. Creating sets `remaining = stock`.
    /// Updating changes the terms; a new total `stock` moves `remaining` by the
    /// difference and is refused (`StockBelowCommitted`) below `reserved + sold`.
    /// Buyers, reservations, idempotency keys and the closed flag are kept: a closed
    /// sale stays closed.
    pub async fn load_sale(&self, def: &SaleDefinition) -> Result<LoadOutcome, EngineError> {
        check_terms(def)?;
        dispatch!(self, "load_sale", e => e.load_sale(def).await)
    }

    /// Changes the terms of a sale the engine holds, as [`load_sale`](Self::load_sale)
    /// does, but never creates one: `None` when the engine lacks the sale (it must be
    /// rebuilt from its orders, [`restore_sale`](Self::restore_sale), not created empty).
    pub async fn update_sale(&self, def: &SaleDefinition) -> Result<Option<LoadOutcome>, EngineError> {
        check_terms(def)?;
        dispatch!(self, "load_sale", e => e.update_sale(def).await)
    }

    /// Rebuilds a sale the store lost (a restart, a flush) from durable records, in one
    /// atomic step: `remaining = stock - held`, every order's reservation (in its state),
    /// each buyer's units and every recorded Idempotency-Key's first answer, under a new
    /// `epoch`. No purchase can slip in between loading the stock and re-reserving the
    /// orders, so a restore never oversells, and a retry finds its first order. `false`
    /// (and no change) when the sale exists.
    pub async fn restore_sale(
        &self,
        def: &SaleDefinition,
        closed: bool,
        epoch: i64,
        orders: &[RecordedOrder],
    ) -> Result<bool, EngineError> {
        if orders.iter().any(|o| o.quantity < 1) {
            return Err(EngineError::InvalidInput("order quantity below 1"));
        }
        if orders.iter().any(|o| o.idempotency_key.as_deref() == Some("")) {
            return Err(EngineError::InvalidInput("an empty idempotency key"));
        }
        dispatch!(self, "restore_sale", e => e.restore_sale(def, closed, epoch, orders).await)
    }

    /// Deletes every key of the sale (after it has closed and settled). `false` when
    /// there was nothing to delete.
    pub async fn remove_sale(&self, sale_id: i64) -> Result<bool, EngineError> {
        dispatch!(self, "remove_sale", e => e.remove_sale(sale_id).await)
    }

    /// Ends the sale now: further purchases are refused with `SaleClosed`. `false`
    /// when there is no such sale (nothing is created).
    pub async fn close_sale(&self, sale_id: i64) -> Result<bool, EngineError> {
        dispatch!(self, "close_sale", e => e.close_sale(sale_id).await)
    }

    /// Halts the sale (new purchases refused with `Halted`; an accepted purchase's retry
    /// still gets its order) or lifts the halt. `false` when there is no such sale.
    /// A restore from the orders does not know of a halt: whoever halts sets it again.
    pub async fn set_halted(&self, sale_id: i64, halted: bool) -> Result<bool, EngineError> {
        dispatch!(self, "set_halted", e => e.set_halted(sale_id, halted).await)
    }

    pub async fn counters(&self, sale_id: i64) -> Result<Option<SaleCounters>, EngineError> {
        dispatch!(self, "counters", e => e.counters(sale_id).await)
    }

    /// Units `user` holds in the sale (reserved or sold, not released).
    pub async fn held_by(&self, sale: SaleId, user: UserId) -> Result<i64, EngineError> {
        dispatch!(self, "held_by", e => e.held_by(sale.0, user.0).await)
    }

    /// The order id and quantity a successful purchase with this (user, key) was given,
    /// if any, with the sale's epoch (read first, so a rebuild in between can only make
    /// it older: the commit is then refused and retried, never let through); for
    /// answering a retry when the sale is flagged sold out.
    pub async fn first_answer(
        &self,
        sale: SaleId,
        user: UserId,
        idempotency_key: &str,
    ) -> Result<KeyRecord, EngineError> {
        dispatch!(self, "first_answer", e => e.first_answer(sale.0, user.0, idempotency_key).await)
    }

    /// Every shopper who has ever reserved in the sale (including those whose units were
    /// released since), or `None` when there are more than `at_most` of them.
    pub async fn buyers(
        &self,
        sale_id: i64,
        at_most: usize,
    ) -> Result<Option<std::collections::HashSet<i64>>, EngineError> {
        dispatch!(self, "buyers", e => e.buyers(sale_id, at_most).await)
    }

    /// How many shoppers have ever reserved in the sale.
    pub async fn buyer_count(&self, sale_id: i64) -> Result<usize, EngineError> {
        dispatch!(self, "buyer_count", e => e.buyer_count(sale_id).await)
    }

    /// Reservations of the sale still held (neither confirmed nor released), in no
    /// particular order. Used to find reservations whose order never got committed.
    pub async fn open_reservations(&self, sale_id: i64) -> Result<Vec<OpenReservation>, EngineError> {
        dispatch!(self, "open_reservations", e => e.open_reservations(sale_id).await)
    }

    /// The purchase decision (see `scripts/reserve.lua` for the order of the checks).
    /// A repeated (user, key) returns the first successful answer and changes nothing;
    /// refusals are not remembered, since they change nothing either.
    /// The request is typed ([`Quantity`] is at least 1), so it cannot be made with a
    /// swapped argument or a quantity the engine would have to refuse.
    pub async fn reserve(&self, request: &ReservationRequest<'_>) -> Result<Reservation, EngineError> {
        dispatch!(self, "reserve", e => e.reserve(request).await)
    }

    /// Reserved or sold (a refund) units go back to stock exactly once.
    pub async fn release(&self, sale_id: i64, order_id: &str) -> Result<Settle, EngineError> {
        dispatch!(self, "release", e => e.settle(sale_id, order_id, false).await)
    }

    /// Reserved units become sold exactly once; a released reservation cannot be sold.
    pub async fn confirm(&self, sale_id: i64, order_id: &str) -> Result<Settle, EngineError> {
        dispatch!(self, "confirm", e => e.settle(sale_id, order_id, true).await)
    }

    /// `user` joins the sale's waiting room at `now_ms` (idempotent: a shopper who has
    /// joined gets their place as it stands). See [`queue`] for the rules.
    pub async fn join_queue(
        &self,
        sale: SaleId,
        user: UserId,
        now_ms: i64,
    ) -> Result<Result<queue::QueuePlace, queue::QueueRefusal>, EngineError> {
        dispatch!(self, "join_queue", e => e.join_queue(sale.0, user.0, now_ms).await)
    }

    /// `user`'s place in the sale's waiting room at `now_ms`.
    pub async fn queue_place(
        &self,
        sale: SaleId,
        user: UserId,
        now_ms: i64,
    ) -> Result<Result<queue::QueuePlace, queue::QueueRefusal>, EngineError> {
        dispatch!(self, "queue_place", e => e.queue_place(sale.0, user.0, now_ms).await)
    }

    /// The sale's waiting room in numbers at `now_ms`.
    pub async fn queue_counts(
        &self,
        sale: SaleId,
        now_ms: i64,
    ) -> Result<Result<queue::QueueCounts, queue::QueueRefusal>, EngineError> {
        dispatch!(self, "queue_counts", e => e.queue_counts(sale.0, now_ms).await)
    }

    /// Overwrites a regular product's live stock (the product service owns the number).
    pub async fn set_product_stock(&self, product_id: i64, available: i64) -> Result<(), EngineError> {
        dispatch!(self, "set_product_stock", e => e.set_product_stock(product_id, available).await)
    }

    /// Sets a product's live stock only if it has none yet; `true` when this call did.
    /// Seeding this way can never overwrite a decrement made meanwhile.
    pub async fn seed_product_stock(&self, product_id: i64, available: i64) -> Result<bool, EngineError> {
        dispatch!(self, "seed_product_stock", e => e.seed_product_stock(product_id, available).await)
    }

    pub async fn product_stock(&self, product_id: i64) -> Result<Option<i64>, EngineError> {
        dispatch!(self, "product_stock", e => e.product_stock(product_id).await)
    }

    /// Cart checkout: every line or none; `Err(product_id)` names the first short (or
    /// unknown) product. Lines of the same product are added up first, so a product
    /// listed twice cannot pass two separate checks. Idempotent per order id: a repeat
    /// (even after a release) changes nothing and answers `Ok`.
    pub async fn reserve_products(&self, order_id: &str, lines: &[(i64, i64)]) -> Result<Result<(), i64>, EngineError> {
        if lines.is_empty() {
            return Err(EngineError::InvalidInput("an order without lines"));
        }
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(lines.len());
        for &(product_id, quantity) in lines {
            if quantity < 1 {
                return Err(EngineError::InvalidInput("quantity below 1"));
            }
            match merged.iter_mut().find(|(p, _)| *p == product_id) {
                Some(line) => line.1 += quantity,
                None => merged.push((product_id, quantity)),
            }
        }
        dispatch!(self, "reserve_products", e => e.reserve_products(order_id, &merged).await)
    }

    /// Puts a checkout order's units back exactly once; `true` when this call did.
    pub async fn release_products(&self, order_id: &str) -> Result<bool, EngineError> {
        dispatch!(self, "release_products", e => e.release_products(order_id).await)
    }
}
