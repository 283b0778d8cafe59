//! Publishing: one idempotent producer (`enable.idempotence`, `acks=all`) per bus; each
//! event goes to `event.topic` keyed by `event.key` (so one order's events share a
//! partition and stay in order) with the JSON of the whole [`Event`] as the value.

use std::time::Duration;

use rdkafka::{
    error::{KafkaError, RDKafkaErrorCode},
    producer::{FutureProducer, FutureRecord},
};

use super::{KafkaBusError, KafkaSettings};
use crate::events::Event;

pub(super) fn new_producer(settings: &KafkaSettings) -> Result<FutureProducer, KafkaBusError> {
    let mut config = settings.base_config();
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", settings.delivery_timeout_ms.to_string())
        .set("linger.ms", settings.linger_ms.to_string());
    config.create().map_err(|source| KafkaBusError::Client {
        client: "producer",
        brokers: settings.brokers.clone(),
        source,
    })
}

pub(super) async fn publish_with(
    producer: &FutureProducer,
    events: &[Event],
    settings: &KafkaSettings,
) -> Result<(), KafkaBusError> {
    let payloads: Vec<Vec<u8>> = events.iter().map(|e| serde_json::to_vec(e).expect("events serialise")).collect();
    let mut deliveries = Vec::with_capacity(events.len());
    let enqueue_deadline = tokio::time::Instant::now() + Duration::from_millis(settings.delivery_timeout_ms);
    let topics: Vec<String> = events.iter().map(|e| settings.physical(&e.topic)).collect();
    for ((event, payload), topic) in events.iter().zip(&payloads).zip(&topics) {
        let mut record = FutureRecord::to(topic).key(&event.key).payload(payload);
        // Enqueue in order; the idempotent producer keeps that order per partition.
        let delivery = loop {
            match producer.send_result(record) {
                Ok(delivery) => break delivery,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if tokio::time::Instant::now() < enqueue_deadline =>
                {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((source, _)) => {
                    return Err(KafkaBusError::Send {
                        brokers: settings.brokers.clone(),
                        event_id: event.id.clone(),
                        kind: event.kind.clone(),
                        topic: event.topic.clone(),
                        source,
                    })
                }
            }
        };
        deliveries.push(delivery);
    }
    for (event, delivery) in events.iter().zip(deliveries) {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((source, _))) => {
                return Err(KafkaBusError::NotAcknowledged {
                    brokers: settings.brokers.clone(),
                    event_id: event.id.clone(),
                    kind: event.kind.clone(),
                    topic: event.topic.clone(),
                    source,
                })
            }
            Err(_) => return Err(KafkaBusError::Dropped { event_id: event.id.clone(), kind: event.kind.clone() }),
        }
    }
    Ok(())
}
