//! Where outbox events go. In a deployment, Kafka ([`KafkaBus`], `kafka.rs`); in the
//! one-process default, an in-process dispatcher that hands each event to every
//! subscribed consumer group and returns only when all of them handled it, so the relay
//! marks a row published only once it has really been consumed (nothing is lost on a
//! crash).

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, RwLock},
};

use super::{Event, KafkaBus};

pub type HandlerFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// A consumer: called once per delivery; must be idempotent (see `first_time`).
pub type EventHandler = Arc<dyn Fn(Event) -> HandlerFuture + Send + Sync>;

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
            Bus::Kafka(bus) => bus.publish(events).await,
        }
    }

    /// Starts consuming `topics` as consumer group `group`. With Kafka, a consumer
    /// task runs until the bus's shutdown token fires; a consumer librdkafka refuses
    /// to create (a wiring mistake at start, not a broker outage) panics with the reason.
    pub fn subscribe(&self, group: &str, topics: &[&str], handler: EventHandler) {
        match self {
            Bus::InProcess(bus) => bus.subscribe(group, topics, handler),
            Bus::Kafka(bus) => {
                if let Err(e) = bus.subscribe(group, topics, handler) {
                    panic!("cannot start Kafka consumer group {group}: {e:#}");
                }
            }
        }
    }
}

#[derive(Clone, Default)]
pub struct InProcessBus {
    /// topic → (group, handler)
    subscribers: Arc<RwLock<HashMap<String, Vec<(String, EventHandler)>>>>,
}

impl InProcessBus {
    pub fn subscribe(&self, group: &str, topics: &[&str], handler: EventHandler) {
        let mut subscribers = self.subscribers.write().expect("subscriber map");
        for topic in topics {
            subscribers.entry((*topic).to_owned()).or_default().push((group.to_owned(), handler.clone()));
        }
    }

    async fn publish(&self, events: &[Event]) -> anyhow::Result<()> {
        for event in events {
            let handlers: Vec<(String, EventHandler)> =
                self.subscribers.read().expect("subscriber map").get(&event.topic).cloned().unwrap_or_default();
            for (group, handler) in handlers {
                handler(event.clone())
                    .await
                    .map_err(|e| anyhow::anyhow!("consumer {group} failed on {} ({}): {e:#}", event.id, event.kind))?;
            }
        }
        Ok(())
    }
}
