//! Where outbox events go. In a deployment, Kafka ([`KafkaBus`], `kafka.rs`); in the
//! one-process default, an in-process dispatcher that hands each event to every
//! subscribed consumer group and returns only when all of them handled it, so the relay
//! marks a row published only once it has really been consumed (nothing is lost on a
//! crash).

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, RwLock},
};

use super::{Event, KafkaBus};

pub type HandlerFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// A consumer: called once per delivery; must be idempotent (see `first_time`).
pub type EventHandler = Arc<dyn Fn(Event) -> HandlerFuture + Send + Sync>;

/// A consumer that takes what arrived together (in delivery order, at most a few
/// hundred events), so it can handle them in one transaction. A failure redelivers the
/// whole batch, so it must be idempotent per event, like an [`EventHandler`].
pub type BatchHandler = Arc<dyn Fn(Vec<Event>) -> HandlerFuture + Send + Sync>;

/// Runs a per-event handler over a batch, in order, stopping at the first failure.
fn one_at_a_time(handler: EventHandler) -> BatchHandler {
    Arc::new(move |events| {
        let handler = handler.clone();
        Box::pin(async move {
            for event in events {
                let about = format!("event {} ({})", event.id, event.kind);
                handler(event).await.map_err(|e| e.context(about))?;
            }
            Ok(())
        })
    })
}

#[derive(Clone)]
pub enum Bus {
    InProcess(InProcessBus),
    Kafka(KafkaBus),
}

impl Bus {
    /// Publishes in order; `Ok` means every event is durably accepted.
    pub async fn publish(&self, events: &[Event]) -> anyhow::Result<()> {
        match self {
            Bus::InProcess(bus) => bus.publish(events).await,
            Bus::Kafka(bus) => Ok(bus.publish(events).await?),
        }
    }

    /// Starts consuming `topics` as consumer group `group`. With Kafka, a consumer
    /// task runs until the bus's shutdown token fires; a consumer librdkafka refuses
    /// to create (a wiring mistake at start, not a broker outage) panics with the reason.
    pub fn subscribe(&self, group: &str, topics: &[&str], handler: EventHandler) {
        match self {
            Bus::InProcess(bus) => bus.subscribe(group, topics, handler),
            Bus::Kafka(bus) => started(group, bus.subscribe(group, topics, handler)),
        }
    }

    /// Like [`subscribe`](Self::subscribe), with the events that arrived together in
    /// one call.
    pub fn subscribe_batches(&self, group: &str, topics: &[&str], handler: BatchHandler) {
        match self {
            Bus::InProcess(bus) => bus.subscribe_batches(group, topics, handler),
            Bus::Kafka(bus) => started(group, bus.subscribe_batches(group, topics, handler)),
        }
    }
}

fn started<T>(group: &str, consumer: Result<T, super::KafkaBusError>) {
    if let Err(e) = consumer {
        panic!("cannot start Kafka consumer group {group}: {}", crate::telemetry::Causes(&e));
    }
}

#[derive(Clone, Default)]
pub struct InProcessBus {
    /// In subscription order: (group, its topics, handler).
    subscribers: Arc<RwLock<Vec<Subscriber>>>,
}

type Subscriber = (String, Vec<String>, BatchHandler);

impl InProcessBus {
    pub fn subscribe(&self, group: &str, topics: &[&str], handler: EventHandler) {
        self.subscribe_batches(group, topics, one_at_a_time(handler));
    }

    pub fn subscribe_batches(&self, group: &str, topics: &[&str], handler: BatchHandler) {
        let topics = topics.iter().map(|t| (*t).to_owned()).collect();
        self.subscribers.write().expect("subscriber list").push((group.to_owned(), topics, handler));
    }

    /// Each group gets the events of its topics, in order, as one batch.
    async fn publish(&self, events: &[Event]) -> anyhow::Result<()> {
        let subscribers: Vec<Subscriber> = self.subscribers.read().expect("subscriber list").clone();
        for (group, topics, handler) in subscribers {
            let batch: Vec<Event> = events.iter().filter(|e| topics.contains(&e.topic)).cloned().collect();
            if batch.is_empty() {
                continue;
            }
            let count = batch.len();
            handler(batch)
                .await
                .map_err(|e| anyhow::anyhow!("consumer {group} failed on a batch of {count} events: {e:#}"))?;
        }
        Ok(())
    }
}
