//! A reservation whose order was never committed (the process died between the two)
//! is found by the sweeper, recorded as a cancelled order, and released by the saga,
//! on MariaDB + Redis and on SQLite + the in-process engine.

use std::time::Duration;

use goodsmall_order::{
    consumers,
    orders::{NewOrder, Orders},
    orphans,
    sales::{NewSale, Sales},
};
use goodsmall_platform::{
    configuration::DatabaseSettings,
    db::Database,
    events::{self, Bus, InProcessBus, RelayHandle},
    metrics::Metrics,
    money::Price,
};
use goodsmall_sale::{Quantity, Reservation, ReservationRequest, SaleId, StockEngine, UserId};
use tokio_util::sync::CancellationToken;

async fn backends() -> Vec<(Database, StockEngine)> {
    let metrics = Metrics::new();
    let settings = |url: String| DatabaseSettings { url: url.into(), max_connections: 5, create_if_missing: true };
    let mysql = Database::connect(
        "order",
        &settings(goodsmall_testkit::mysql_url("orphans").await),
        &goodsmall_order::startup::migrations(),
        &metrics,
    )
    .await
    .expect("the test MariaDB");
    let redis = redis::Client::open(goodsmall_testkit::redis_url().await).unwrap();
    let redis = StockEngine::redis(redis::aio::ConnectionManager::new(redis).await.expect("the test Redis"));
    let sqlite = Database::connect(
        "order",
        &settings(goodsmall_testkit::sqlite_url("orphans")),
        &goodsmall_order::startup::migrations(),
        &metrics,
    )
    .await
    .unwrap();
    vec![(mysql, redis), (sqlite, StockEngine::memory())]
}

/// A v7 order id made `age` ago, as a purchase that long ago would have made it.
fn order_id_from(age: Duration) -> String {
    let at = std::time::SystemTime::now() - age;
    let since = at.duration_since(std::time::UNIX_EPOCH).unwrap();
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, since.as_secs(), since.subsec_nanos());
    uuid::Uuid::new_v7(ts).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_without_an_order_is_released_after_the_grace_period() {
    for (db, engine) in backends().await {
        let backend = engine.backend_name();
        events::install_schema(&db).await.unwrap();
        let (sales, orders) = (Sales::new(db.clone(), engine.clone()), Orders::new(db.clone()));
        let now = chrono::Utc::now();
        let sale = sales
            .create(NewSale {
                product_id: 7,
                merchant_id: 1,
                stock: 10,
                price: Price::from_cents(4_900),
                opens_at: now - chrono::Duration::minutes(5),
                closes_at: now + chrono::Duration::hours(1),
                per_user_limit: 5,
                admission: None,
            })
            .await
            .unwrap();
        let bus = Bus::InProcess(InProcessBus::default());
        consumers::subscribe(&bus, orders.clone(), engine.clone());
        let shutdown = CancellationToken::new();
        let relay = events::run_relay(db.clone(), bus.clone(), RelayHandle::default(), shutdown.clone());

        let now_ms = goodsmall_platform::clock::now_millis();
        let reserve = |user: i64, order_id: String| {
            let engine = engine.clone();
            async move {
                let r = engine
                    .reserve(&ReservationRequest {
                        sale: SaleId(sale.id),
                        user: UserId(user),
                        key: &order_id,
                        quantity: Quantity::new(2).unwrap(),
                        order: &order_id,
                        at_ms: now_ms,
                        turn_ends_ms: None,
                    })
                    .await
                    .unwrap();
                assert!(matches!(r, Reservation::Reserved { .. }), "{r:?}");
                order_id
            }
        };
        let orphan = reserve(1, order_id_from(Duration::from_secs(120))).await;
        let young = reserve(2, order_id_from(Duration::from_secs(5))).await;
        let committed = reserve(3, order_id_from(Duration::from_secs(120))).await;
        let mut tx = db.pool().begin().await.unwrap();
        let line =
            goodsmall_platform::events::contracts::OrderLine { product_id: 7, quantity: 2, unit_price_cents: 4_900 };
        Orders::insert(
            &mut tx,
            &NewOrder {
                id: committed.clone(),
                user_id: 3,
                sale_id: Some(sale.id),
                lines: vec![line],
                idempotency_key: None,
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();

        let mut sweeper = orphans::Sweeper::default();
        let pass = sweeper.sweep(&orders, &sales, &engine, Duration::from_secs(60)).await.unwrap();
        assert_eq!(
            pass,
            orphans::Pass { released: 1, looked_up: 2 },
            "{backend}: only the old reservation without an order"
        );
        let canceled = orders.find(&orphan).await.unwrap().expect("the orphan is recorded");
        assert_eq!((canceled.status.as_str(), canceled.user_id), ("CANCELED", 1), "{backend}");
        assert!(orders.find(&young).await.unwrap().is_none(), "{backend}: a young reservation may still commit");
        assert_eq!(orders.find(&committed).await.unwrap().unwrap().status.as_str(), "PROCESSING", "{backend}");
        // The next pass asks the database about nothing it has seen with an order; a
        // sweeper that remembers nothing (a restarted service) finds nothing new either.
        let again = sweeper.sweep(&orders, &sales, &engine, Duration::from_secs(60)).await.unwrap();
        assert_eq!(again, orphans::Pass { released: 0, looked_up: 0 }, "{backend}: once, and incrementally");
        let fresh = orphans::Sweeper::default().sweep(&orders, &sales, &engine, Duration::from_secs(60)).await.unwrap();
        assert_eq!(fresh.released, 0, "{backend}: once, across restarts");

        // The saga releases the orphan's units; the others keep theirs.
        let mut counters = engine.counters(sale.id).await.unwrap().unwrap();
        for _ in 0..100 {
            if counters.reserved == 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            counters = engine.counters(sale.id).await.unwrap().unwrap();
        }
        assert_eq!((counters.remaining, counters.reserved, counters.sold), (6, 4, 0), "{backend}: {counters:?}");
        assert_eq!(engine.held_by(SaleId(sale.id), UserId(1)).await.unwrap(), 0, "{backend}");
        shutdown.cancel();
        relay.await.unwrap();
    }
}
