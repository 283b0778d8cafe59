//! Every event of a finished drop delivered a second time (the whole history replayed
//! from offset 0 onto the live topics) changes nothing: consumers are idempotent.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use goodsmall_platform::events::{contracts, Bus, Event, EventHandler, KafkaBus, KafkaSettings};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::{
    catalogue::create_product,
    helpers::{assert_status, TestShop},
};

/// What the shoppers and the merchant can see: orders, payments, sale counters, products.
async fn snapshot(shop: &TestShop, me: &str, orders: &[String], sale: i64, products: &[i64]) -> Vec<Value> {
    let mut seen = Vec::new();
    for order in orders {
        seen.push(assert_status(shop.get(&format!("/api/orders/{order}"), Some(me)).await, StatusCode::OK).await);
        seen.push(assert_status(shop.get(&format!("/api/payments/{order}"), Some(me)).await, StatusCode::OK).await);
    }
    seen.push(assert_status(shop.get(&format!("/api/sales/{sale}"), None).await, StatusCode::OK).await);
    for product in products {
        seen.push(assert_status(shop.get(&format!("/api/products/{product}/stock"), None).await, StatusCode::OK).await);
        let detail = assert_status(shop.get(&format!("/api/products/{product}"), None).await, StatusCode::OK).await;
        seen.push(json!({ "quantity": detail["quantity"] }));
    }
    seen
}

/// Reads the shop's topics from offset 0 (a fresh consumer group) until every event of
/// the shop's outboxes has arrived `copies` times: the history as published, or with a
/// replay on top. Call it once the outboxes are drained. The reader's group is named
/// outside the shop's namespace (it reads the namespaced topics by their physical
/// names), so `wait_until_consumed` does not wait on it once it has stopped.
async fn history(shop: &TestShop, kafka: &KafkaSettings, copies: usize) -> Vec<Event> {
    let topics = [contracts::CHECKOUTS_TOPIC, contracts::ORDERS_TOPIC, contracts::PAYMENTS_TOPIC];
    let mut published = Vec::new();
    for (event, is_published) in shop.outbox_events().await {
        assert!(is_published, "history read while {} ({}) waits in an outbox", event.id, event.kind);
        if topics.contains(&event.topic.as_str()) {
            published.push(event.id);
        }
    }
    assert!(!published.is_empty(), "no events in the shop's outboxes");
    let shutdown = CancellationToken::new();
    let outside = KafkaSettings { namespace: None, ..kafka.clone() };
    let reader = KafkaBus::connect(&outside, shutdown.clone()).await.unwrap();
    let seen: Arc<std::sync::Mutex<Vec<Event>>> = Arc::default();
    let sink = seen.clone();
    let handler: EventHandler = Arc::new(move |event| {
        sink.lock().unwrap().push(event);
        Box::pin(async { Ok(()) })
    });
    let physical: Vec<String> = topics.iter().map(|t| kafka.physical(t)).collect();
    let physical: Vec<&str> = physical.iter().map(String::as_str).collect();
    reader.subscribe(&goodsmall_testkit::unique_name("replayer"), &physical, handler).unwrap();
    let started = Instant::now();
    loop {
        let short = {
            let seen = seen.lock().unwrap();
            let mut times: HashMap<&str, usize> = HashMap::new();
            for event in seen.iter() {
                *times.entry(event.id.as_str()).or_default() += 1;
            }
            published.iter().filter(|id| times.get(id.as_str()).copied().unwrap_or(0) < copies).count()
        };
        if short == 0 {
            break;
        }
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_secs(30),
            "{short} of {} published events not read {copies} times in {waited:?}",
            published.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    let events = seen.lock().unwrap().clone();
    events
}

async fn replaying_every_event_changes_nothing(shop: TestShop) {
    let kafka = shop.kafka.clone().expect("the distributed shop runs on Kafka");
    let merchant = shop.merchant().await;
    let (product, sale) = shop.drop_of(&merchant, 5, 3, 0).await;
    let me = shop.shopper().await;
    let paid = shop.bought(&me, sale, 1).await;
    let refunded = shop.bought(&me, sale, 1).await;
    let released = shop.bought(&me, sale, 1).await;
    for order in [&paid, &refunded] {
        assert_status(shop.pay_when_due(&me, order).await, StatusCode::OK).await;
        shop.order_reaches(&me, order, "COMPLETE").await;
    }
    shop.eventually(&format!("/api/payments/{released}"), Some(&me), |p| p["status"] == "PENDING").await;
    assert_status(shop.cancel(&me, &refunded).await, StatusCode::OK).await;
    assert_status(shop.cancel(&me, &released).await, StatusCode::OK).await;
    let hoodie = create_product(&shop, &merchant, "Hoodie", 4).await["id"].as_i64().unwrap();
    shop.post("/api/cart/items", Some(&me), json!({ "product_id": hoodie, "quantity": 2 })).await;
    let checkout = shop
        .client
        .post(shop.url("/api/cart/checkout"))
        .bearer_auth(&me)
        .header("Idempotency-Key", "c1")
        .send()
        .await
        .unwrap();
    let checked_out = assert_status(checkout, StatusCode::ACCEPTED).await["order_id"].as_str().unwrap().to_owned();
    assert_status(shop.pay_when_due(&me, &checked_out).await, StatusCode::OK).await;
    shop.order_reaches(&me, &checked_out, "COMPLETE").await;
    for order in [&refunded, &released] {
        shop.eventually(&format!("/api/payments/{order}"), Some(&me), |p| {
            p["status"] == "REFUNDED" || p["status"] == "CANCELED"
        })
        .await;
    }
    shop.sale_settles_at(sale, 4, 1).await;
    shop.eventually(&format!("/api/products/{product}"), None, |p| p["quantity"] == 999).await;
    shop.eventually(&format!("/api/products/{hoodie}"), None, |p| p["quantity"] == 2).await;

    let orders = [paid, refunded, released, checked_out];
    shop.events_settled().await;
    let before = snapshot(&shop, &me, &orders, sale, &[product, hoodie]).await;
    let events = history(&shop, &kafka, 1).await;
    let kinds: std::collections::BTreeSet<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    for kind in ["checkout.placed", "order.created", "order.completed", "order.canceled", "payment.succeeded"] {
        assert!(kinds.contains(kind), "the history holds {kind}: {kinds:?}");
    }
    // Everything again, twice over, onto the live topics.
    let shutdown = CancellationToken::new();
    let publisher = Bus::Kafka(KafkaBus::connect(&kafka, shutdown.clone()).await.unwrap());
    publisher.publish(&events).await.unwrap();
    publisher.publish(&events).await.unwrap();
    let marker = history(&shop, &kafka, 3).await.len();
    assert!(marker >= 3 * events.len(), "the replay reached the topics: {marker} of {}", 3 * events.len());
    // Every consumer group of the shop has consumed the replay, and whatever a
    // consumer appended in reaction is published and consumed too.
    shop.events_settled().await;
    let after = snapshot(&shop, &me, &orders, sale, &[product, hoodie]).await;
    assert_eq!(before, after, "a replayed history changed the shop");
    shutdown.cancel();
}

mod distributed {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replaying_every_event_changes_nothing() {
        let shop = crate::helpers::TestShop::distributed_with(crate::drop_helpers::RELIABLE_PSP).await;
        super::replaying_every_event_changes_nothing(shop).await
    }
}
