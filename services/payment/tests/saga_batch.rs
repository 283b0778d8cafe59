//! The payment consumer handles what arrives together as one batch: payments for a run
//! of `order.created` opened in one transaction, each exactly once, with a
//! cancellation handled after the creations before it. MariaDB and SQLite.

use std::{sync::Arc, time::Duration};

use goodsmall_payment::{
    configuration::SimulatedPspSettings,
    consumer,
    payments::{Due, PaymentStatus, Payments},
    psp::SimulatedPsp,
};
use goodsmall_platform::{
    configuration::DatabaseSettings,
    db::Database,
    events::{
        self,
        contracts::{kinds, OrderEvent, OrderLine, ORDERS_TOPIC},
        Bus, Event, InProcessBus, RelayHandle,
    },
    metrics::Metrics,
};
use sqlx::Row;

fn order_event(kind: &str, order_id: &str, user_id: i64) -> Event {
    let lines = vec![OrderLine { product_id: 1, quantity: 1, unit_price_cents: 4_900 }];
    let order =
        OrderEvent { order_id: order_id.into(), user_id, sale_id: Some(1), total_cents: 4_900, lines, was_paid: false };
    Event::new(ORDERS_TOPIC, kind, order_id, order)
}

async fn count(db: &Database, sql: &str) -> i64 {
    sqlx::query(sql).fetch_one(db.pool()).await.unwrap().try_get::<i64, _>(0).unwrap()
}

#[tokio::test]
async fn a_batch_opens_each_payment_once_and_keeps_each_orders_event_order() {
    let settings = |url: String| DatabaseSettings { url: url.into(), max_connections: 5, create_if_missing: true };
    for url in [goodsmall_testkit::mysql_url("paybatch").await, goodsmall_testkit::sqlite_url("paybatch")] {
        let db = Database::connect(
            "payment",
            &settings(url.clone()),
            &goodsmall_payment::startup::migrations(),
            &Metrics::new(),
        )
        .await
        .unwrap();
        events::install_schema(&db).await.unwrap();
        let psp = SimulatedPsp::new(SimulatedPspSettings { failure_rate: 0.0, latency_millis: 0 });
        let payments = Payments::new(db.clone(), Arc::new(psp), RelayHandle::default());
        let bus = Bus::InProcess(InProcessBus::default());
        bus.consume_batches(consumer::PaymentConsumer::new(payments.clone(), Duration::from_secs(600)));

        // 300 new orders (more than one multi-row chunk), one of them delivered twice in
        // the same batch, another created by a second event, and one created then
        // cancelled within the batch.
        let mut batch: Vec<Event> = (0..300).map(|n| order_event(kinds::ORDER_CREATED, &format!("o{n}"), n)).collect();
        batch.push(batch[7].clone());
        batch.push(order_event(kinds::ORDER_CREATED, "o8", 8));
        batch.push(order_event(kinds::ORDER_CANCELED, "o9", 9));
        batch.push(order_event(kinds::ORDER_CREATED, "late", 1_000));
        bus.publish(&batch).await.unwrap();

        assert_eq!(count(&db, "SELECT COUNT(*) FROM payments").await, 301, "{url}: one payment per order");
        let status = |id: &str| {
            let payments = payments.clone();
            let id = id.to_owned();
            async move { payments.find(&id).await.unwrap().unwrap().status }
        };
        assert_eq!(status("o7").await, PaymentStatus::Pending, "{url}");
        assert_eq!(status("o9").await, PaymentStatus::Canceled, "{url}: cancelled after its creation");
        assert_eq!(
            status("late").await,
            PaymentStatus::Pending,
            "{url}: creations after a cancellation are handled too"
        );
        let o3 = payments.find("o3").await.unwrap().unwrap();
        assert_eq!((o3.user_id, o3.amount.cents()), (3, 4_900), "{url}");
        let deadline_in = o3.deadline_at - chrono::Utc::now();
        assert!(
            deadline_in > chrono::Duration::seconds(590) && deadline_in <= chrono::Duration::seconds(600),
            "{url}: {deadline_in}"
        );

        // The whole batch again (a redelivery after a crash) changes nothing; the
        // payments are the record (no processed-event rows).
        bus.publish(&batch).await.unwrap();
        assert_eq!(count(&db, "SELECT COUNT(*) FROM payments").await, 301, "{url}");
        assert_eq!(count(&db, "SELECT COUNT(*) FROM processed_events").await, 0, "{url}");
        assert_eq!(status("o9").await, PaymentStatus::Canceled, "{url}");
        // A creation redelivered on its own after its cancellation (or a copy published
        // again after it) finds the cancelled payment: nothing reopens.
        bus.publish(&[batch.iter().find(|e| e.key == "o9").unwrap().clone()]).await.unwrap();
        assert_eq!(status("o9").await, PaymentStatus::Canceled, "{url}");
        // The same for a settled payment: the shopper paid, then a redelivery.
        payments.pay(payments.find("o3").await.unwrap().unwrap()).await.unwrap();
        bus.publish(&batch[3..4]).await.unwrap();
        assert_eq!(status("o3").await, PaymentStatus::Succeeded, "{url}");
        assert_eq!(count(&db, "SELECT COUNT(*) FROM payments").await, 301, "{url}");
    }
}

/// Two replicas handle the same creation (a rebalance redelivers it to the second while
/// the first commits): the order's payment is opened once, by whichever commits first;
/// the other's multi-row insert falls back to one row at a time and leaves it out.
/// MariaDB only (SQLite has a single writer).
#[tokio::test]
async fn two_replicas_open_one_payment_per_order() {
    let settings = DatabaseSettings {
        url: goodsmall_testkit::mysql_url("payopen").await.into(),
        max_connections: 5,
        create_if_missing: true,
    };
    let db = Database::connect("payment", &settings, &goodsmall_payment::startup::migrations(), &Metrics::new())
        .await
        .unwrap();
    events::install_schema(&db).await.unwrap();
    let psp = SimulatedPsp::new(SimulatedPspSettings { failure_rate: 0.0, latency_millis: 0 });
    let payments = Payments::new(db.clone(), Arc::new(psp), RelayHandle::default());
    let due = |order_id: &str, amount_cents: i64| Due {
        order_id: order_id.into(),
        user_id: 7,
        amount_cents,
        deadline_ms: goodsmall_platform::clock::now_millis() + 600_000,
    };

    let mut first = db.pool().begin().await.unwrap();
    payments.open_all(&mut first, &[due("a", 100)]).await.unwrap(); // its snapshot starts here
    let mut second = db.pool().begin().await.unwrap();
    payments.open_all(&mut second, &[due("b", 200)]).await.unwrap();
    second.commit().await.unwrap();
    payments.open_all(&mut first, &[due("b", 999), due("c", 300), due("c", 300)]).await.unwrap();
    first.commit().await.unwrap();

    assert_eq!(count(&db, "SELECT COUNT(*) FROM payments").await, 3, "one payment per order");
    assert_eq!(payments.find("b").await.unwrap().unwrap().amount.cents(), 200, "b is the second replica's");
}

/// Another replica records one of the batch's events between this transaction's read
/// and its insert (REPEATABLE READ hides it from the read): the multi-row insert fails
/// on the duplicate, and the batch falls back to one event at a time, leaving that
/// event to the other replica. MariaDB only (SQLite has a single writer).
#[tokio::test]
async fn a_batch_leaves_to_another_replica_what_it_recorded_meanwhile() {
    let settings = DatabaseSettings {
        url: goodsmall_testkit::mysql_url("payrace").await.into(),
        max_connections: 5,
        create_if_missing: true,
    };
    let db = Database::connect("payment", &settings, &goodsmall_payment::startup::migrations(), &Metrics::new())
        .await
        .unwrap();
    events::install_schema(&db).await.unwrap();

    let mut tx = db.pool().begin().await.unwrap();
    // The snapshot starts here.
    assert!(events::first_times(&mut tx, "payment", &["before"]).await.unwrap().contains("before"));
    let mut other = db.pool().begin().await.unwrap();
    assert!(events::first_time(&mut other, "payment", "e2").await.unwrap());
    other.commit().await.unwrap();

    let fresh = events::first_times(&mut tx, "payment", &["e1", "e2", "e3", "e1"]).await.unwrap();
    tx.commit().await.unwrap();
    let mut fresh: Vec<String> = fresh.into_iter().collect();
    fresh.sort();
    assert_eq!(fresh, ["e1", "e3"], "e2 belongs to the other replica; e1 counted once");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM processed_events").await, 4);
}
