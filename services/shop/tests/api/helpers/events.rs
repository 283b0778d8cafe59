//! Waiting for the saga's events to be handled, from the outboxes and (with Kafka) the
//! consumer groups' committed offsets, instead of sleeping.

use std::time::{Duration, Instant};

use goodsmall_platform::events::{self, Event};
use sqlx::Row;

use super::TestShop;

/// How long events may take to be published and consumed.
const EVENT_PATIENCE: Duration = Duration::from_secs(30);

impl TestShop {
    /// Every event in the product, order and payment outboxes, oldest first per
    /// service, and whether the relay has published it.
    pub async fn outbox_events(&self) -> Vec<(Event, bool)> {
        sqlx::any::install_default_drivers();
        let mut events = Vec::new();
        for url in &self.event_databases {
            let db =
                sqlx::any::AnyPoolOptions::new().max_connections(1).connect(url).await.expect("a service database");
            let rows = sqlx::query("SELECT body, published_at FROM outbox_events ORDER BY seq")
                .fetch_all(&db)
                .await
                .expect("the outbox");
            for row in rows {
                let published = row.get::<Option<i64>, _>(1).is_some();
                let held = events::stored_events(&row.get::<String, _>(0)).expect("an outbox row holds events");
                events.extend(held.into_iter().map(|event| (event, published)));
            }
            db.close().await;
        }
        events
    }

    /// Waits until every consumer has handled the `kind` event keyed `key` (an order
    /// id). Its outbox row must be published first: the in-process bus marks it so only
    /// after every consumer handled it; with Kafka, every consumer group must then have
    /// consumed everything published so far.
    pub async fn event_handled(&self, key: &str, kind: &str) {
        let started = Instant::now();
        loop {
            let events = self.outbox_events().await;
            let found = events.iter().find(|(e, _)| e.key == key && e.kind == kind);
            if matches!(found, Some((_, true))) {
                break;
            }
            let state = if found.is_some() { "still unpublished" } else { "not in any outbox" };
            assert!(
                started.elapsed() < EVENT_PATIENCE,
                "the {kind} event of {key} is {state} after {EVENT_PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kafka_consumed().await;
    }

    /// Waits until no event is in flight: every outbox row is published, every consumer
    /// has handled it, and handling appended no new event (a consumer's reaction).
    pub async fn events_settled(&self) {
        let started = Instant::now();
        loop {
            let events = self.outbox_events().await;
            let unpublished = events.iter().filter(|(_, published)| !published).count();
            if unpublished == 0 {
                self.kafka_consumed().await;
                if self.outbox_events().await.len() == events.len() {
                    return;
                }
            }
            assert!(
                started.elapsed() < EVENT_PATIENCE,
                "{unpublished} outbox events still unpublished after {EVENT_PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// With Kafka: every consumer group of the shop's namespace has consumed
    /// everything in its topics. (In one process, publishing is consuming.)
    async fn kafka_consumed(&self) {
        if let Some(kafka) = &self.kafka {
            let namespace = kafka.namespace.as_deref().expect("the test shop's Kafka has a namespace");
            goodsmall_testkit::wait_until_consumed(&kafka.brokers, namespace, EVENT_PATIENCE).await;
        }
    }
}
