//! The reconcile against real MariaDB and Redis, with a controlled clock: pre-load at
//! the warm-up (idempotent), opening and closing gate purchases at the right instant,
//! and a Redis flushed mid-sale is rebuilt from the orders without overselling.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use goodsmall_operator::{
    crd::{FlashSaleSpec, FlashSaleStatus, Phase, Warmup},
    local::CatalogueFn,
    reconcile::{Manifest, Outcome, Reconciler},
    records::SaleRecords,
    scaling::NotApplicable,
};
use goodsmall_order::{
    orders::{NewOrder, Orders},
    sales::Sales,
};
use goodsmall_platform::{
    configuration::DatabaseSettings, db::Database, events::contracts::OrderLine, metrics::Metrics,
};
use goodsmall_sale::{Quantity, Refusal, Reservation, ReservationRequest, SaleCounters, SaleId, StockEngine, UserId};

struct Drop {
    reconciler: Reconciler,
    engine: StockEngine,
    db: Database,
    redis: redis::aio::ConnectionManager,
    spec: FlashSaleSpec,
    status: FlashSaleStatus,
}

impl Drop {
    async fn new(t0: DateTime<Utc>) -> Self {
        let settings = DatabaseSettings {
            url: goodsmall_testkit::mysql_url("operator").await.into(),
            max_connections: 5,
            create_if_missing: true,
        };
        let db = Database::connect("order", &settings, &goodsmall_order::startup::migrations(), &Metrics::new())
            .await
            .expect("the test MariaDB");
        goodsmall_platform::events::install_schema(&db).await.unwrap();
        let client = redis::Client::open(goodsmall_testkit::redis_url().await).unwrap();
        let redis = redis::aio::ConnectionManager::new(client).await.expect("the test Redis");
        let engine = StockEngine::redis(redis.clone());
        let records = SaleRecords::new(Arc::new(Sales::new(db.clone(), engine.clone())), engine.clone());
        let reconciler = Reconciler {
            records,
            catalogue: Arc::new(CatalogueFn(|_| async { Ok(Some(1)) })),
            scaler: Arc::new(NotApplicable),
            refresh: Duration::from_secs(10),
        };
        let spec = FlashSaleSpec {
            product_id: 7,
            stock: 10,
            price: "25.00".into(),
            opens_at: t0 + chrono::Duration::minutes(10),
            closes_at: t0 + chrono::Duration::minutes(70),
            per_user_limit: 2,
            warmup: Warmup { lead: "5m".into(), order_replicas: None, payment_replicas: None },
            admission: None,
        };
        Self { reconciler, engine, db, redis, spec, status: FlashSaleStatus::default() }
    }

    async fn reconcile(&mut self, now: DateTime<Utc>) -> Outcome {
        let m = Manifest {
            namespace: "shop",
            name: "drop",
            generation: Some(1),
            spec: &self.spec,
            status: &self.status,
            merchant_id: None,
            halted: None,
        };
        let outcome = self.reconciler.apply(&m, now).await.expect("reconcile");
        self.status = outcome.status.clone();
        outcome
    }

    fn sale_id(&self) -> i64 {
        self.status.sale_id.expect("the sale is recorded")
    }

    async fn counters(&self) -> Option<SaleCounters> {
        self.engine.counters(self.sale_id()).await.unwrap()
    }

    async fn buy(&self, user: i64, order: &str, quantity: i64, at: DateTime<Utc>) -> Reservation {
        self.engine
            .reserve(&ReservationRequest {
                sale: SaleId(self.sale_id()),
                user: UserId(user),
                key: order,
                quantity: Quantity::new(quantity).unwrap(),
                order,
                at_ms: at.timestamp_millis(),
                turn_ends_ms: None,
            })
            .await
            .unwrap()
    }

    /// Buys and commits the order, as the order service does.
    async fn bought(&self, user: i64, order: &str, quantity: i64, at: DateTime<Utc>) {
        assert!(matches!(self.buy(user, order, quantity, at).await, Reservation::Reserved { .. }));
        let mut tx = self.db.pool().begin().await.unwrap();
        let line = OrderLine { product_id: 7, quantity, unit_price_cents: 2_500 };
        Orders::insert(
            &mut tx,
            &NewOrder {
                id: order.into(),
                user_id: user,
                sale_id: Some(self.sale_id()),
                lines: vec![line],
                idempotency_key: None,
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
}

fn conserved(c: &SaleCounters) {
    assert_eq!(c.initial, c.remaining + c.reserved + c.sold, "conservation: {c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_runs_on_redis_from_warm_up_to_close_and_survives_a_flush() {
    let t0 = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap(); // the record keeps milliseconds
    let minutes = |m: i64| t0 + chrono::Duration::minutes(m);
    let mut drop = Drop::new(t0).await;

    let scheduled = drop.reconcile(t0).await;
    assert_eq!(scheduled.status.phase, Some(Phase::Scheduled));
    assert_eq!(scheduled.requeue_after, Some(Duration::from_secs(5 * 60)), "next look: the warm-up");
    assert_eq!(drop.counters().await, None, "nothing in Redis before the warm-up");

    // Warm-up: pre-loaded once; a second pass changes nothing.
    let warm = drop.reconcile(minutes(5)).await;
    assert_eq!(warm.status.phase, Some(Phase::WarmingUp));
    assert!(warm.notes.iter().any(|n| n.reason == "StockLoaded" && !n.warning), "{:?}", warm.notes);
    let loaded = drop.counters().await.expect("pre-loaded");
    assert_eq!((loaded.initial, loaded.remaining, loaded.per_user_limit, loaded.price_cents), (10, 10, 2, 2_500));
    let again = drop.reconcile(minutes(6)).await;
    assert!(!again.notes.iter().any(|n| n.reason.starts_with("Stock")), "pre-load is idempotent: {:?}", again.notes);
    assert_eq!(drop.counters().await, Some(loaded));

    // The opening gates purchases to the millisecond.
    let opens = drop.spec.opens_at;
    assert_eq!(
        drop.buy(1, "too-early", 1, opens - chrono::Duration::milliseconds(1)).await,
        Reservation::Refused(Refusal::SaleNotOpen)
    );
    assert_eq!(drop.reconcile(opens).await.status.phase, Some(Phase::Open));
    drop.bought(1, "o1", 2, opens).await;
    drop.bought(2, "o2", 1, minutes(11)).await;
    drop.engine.confirm(drop.sale_id(), "o1").await.unwrap();
    let mut tx = drop.db.pool().begin().await.unwrap();
    Orders::transition_in(
        &mut tx,
        "o1",
        &[goodsmall_order::domain::OrderStatus::Processing],
        goodsmall_order::domain::OrderStatus::Complete,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    // A limit raised mid-sale applies at once.
    drop.spec.per_user_limit = 3;
    drop.reconcile(minutes(12)).await;
    assert_eq!(drop.counters().await.unwrap().per_user_limit, 3);
    drop.spec.per_user_limit = 2;
    drop.reconcile(minutes(12)).await;

    // Redis loses everything mid-sale: the next reconcile rebuilds it from the orders.
    redis::cmd("FLUSHDB").query_async::<()>(&mut drop.redis.clone()).await.unwrap();
    assert_eq!(drop.counters().await, None);
    let restored = drop.reconcile(minutes(20)).await;
    assert!(restored.notes.iter().any(|n| n.reason == "StockRestored" && n.warning), "{:?}", restored.notes);
    let c = drop.counters().await.expect("rebuilt");
    conserved(&c);
    assert_eq!((c.initial, c.remaining, c.reserved, c.sold), (10, 7, 1, 2), "what the orders hold: {c:?}");
    assert_eq!(
        drop.buy(1, "more", 1, minutes(21)).await,
        Reservation::Refused(Refusal::PurchaseLimit),
        "buyer 1 still holds 2"
    );
    for user in 10..17 {
        drop.bought(user, &format!("late-{user}"), 1, minutes(22)).await;
    }
    assert_eq!(
        drop.buy(99, "none-left", 1, minutes(23)).await,
        Reservation::Refused(Refusal::SoldOut),
        "never more than the stock"
    );
    let sold_out = drop.reconcile(minutes(23)).await;
    assert_eq!((sold_out.status.phase, sold_out.status.remaining), (Some(Phase::SoldOut), Some(0)));

    // The close gates purchases, and the sale is marked closed.
    drop.engine.release(drop.sale_id(), "late-10").await.unwrap();
    let closes = drop.spec.closes_at;
    assert!(matches!(
        drop.buy(50, "last-second", 1, closes - chrono::Duration::milliseconds(1)).await,
        Reservation::Reserved { .. }
    ));
    drop.engine.release(drop.sale_id(), "last-second").await.unwrap();
    let closed = drop.reconcile(closes).await;
    assert_eq!(closed.status.phase, Some(Phase::Closed));
    assert!(drop.counters().await.unwrap().closed);
    assert_eq!(
        drop.buy(51, "after", 1, closes - chrono::Duration::milliseconds(1)).await,
        Reservation::Refused(Refusal::SaleClosed),
        "closed now, whatever the clock says"
    );
    assert_eq!(closed.requeue_after, Some(Duration::from_secs(10)), "reservations still settle");
    let c = drop.counters().await.unwrap();
    conserved(&c);
    assert_eq!((c.sold, c.reserved + c.remaining), (2, 8));
}
