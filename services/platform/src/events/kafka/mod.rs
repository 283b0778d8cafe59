//! The Kafka bus (librdkafka through `rdkafka`, built from its bundled sources).
//!
//! - [`settings`]: `[kafka]` in the configuration;
//! - [`producer`]: publishing. [`KafkaBus::publish`] enqueues a batch in order and
//!   returns `Ok` only when every event was acknowledged (`acks=all`); any failure is an
//!   `Err` and the outbox relay sends the batch again later (consumers de-duplicate by
//!   event id);
//! - [`consumer`]: one task with its own consumer per subscription, in a broker-managed
//!   consumer group: replicas of a service share the partitions, and a dead replica's
//!   partitions move to the survivors after its session timeout. Delivery is
//!   at-least-once: offsets are stored only after the handler succeeded.
//!
//! Topics are not auto-created: call [`KafkaBus::ensure_topics`] (the admin API's
//! CreateTopics; "already exists" is fine) before publishing or subscribing.
//! Kafka transactions are not used (the outbox gives the atomicity).

// `KafkaBusError` carries librdkafka's error (a large value); it is returned at start and
// on a failed batch, never per event, so its size costs nothing worth a box.
#![allow(clippy::result_large_err)]

mod consumer;
mod error;
mod producer;
mod settings;

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    error::RDKafkaErrorCode,
    producer::Producer,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use error::{HandlerFailed, KafkaBusError};
pub use settings::KafkaSettings;

use super::{BatchHandler, Event, EventHandler};
use consumer::Handling;

/// A connection to Kafka: one producer, plus one consumer task per subscription.
#[derive(Clone)]
pub struct KafkaBus {
    inner: Arc<Inner>,
}

struct Inner {
    settings: KafkaSettings,
    /// Replaced when librdkafka reports a fatal (idempotence) error, which leaves a
    /// producer unusable.
    producer: RwLock<rdkafka::producer::FutureProducer>,
    shutdown: CancellationToken,
}

impl KafkaBus {
    /// Creates the producer and checks that a broker answers (cluster metadata within
    /// `connect_timeout_ms`), failing with an error naming the brokers otherwise.
    /// Consumers started by [`subscribe`](Self::subscribe) stop when `shutdown` fires.
    pub async fn connect(settings: &KafkaSettings, shutdown: CancellationToken) -> Result<KafkaBus, KafkaBusError> {
        let producer = producer::new_producer(settings)?;
        let probe = producer.clone();
        let timeout = Duration::from_millis(settings.connect_timeout_ms);
        let metadata = tokio::task::spawn_blocking(move || probe.client().fetch_metadata(None, timeout))
            .await
            .expect("the Kafka metadata probe does not panic");
        match metadata {
            Ok(metadata) if !metadata.brokers().is_empty() => {
                tracing::info!(brokers = %settings.brokers, cluster_brokers = metadata.brokers().len(),
                    "connected to Kafka");
            }
            Ok(_) => return Err(KafkaBusError::NoBrokers { brokers: settings.brokers.clone() }),
            Err(source) => {
                return Err(KafkaBusError::Unreachable {
                    brokers: settings.brokers.clone(),
                    timeout_ms: settings.connect_timeout_ms,
                    source,
                })
            }
        }
        Ok(KafkaBus {
            inner: Arc::new(Inner { settings: settings.clone(), producer: RwLock::new(producer), shutdown }),
        })
    }

    pub fn brokers(&self) -> &str {
        &self.inner.settings.brokers
    }

    /// Creates each topic that does not exist yet with `partitions` partitions
    /// (replication factor: the broker's default). An existing topic is left as it is.
    pub async fn ensure_topics(&self, topics: &[&str], partitions: i32) -> Result<(), KafkaBusError> {
        if partitions < 1 {
            return Err(KafkaBusError::NoPartitions(partitions));
        }
        if topics.is_empty() {
            return Ok(());
        }
        let settings = &self.inner.settings;
        let admin: AdminClient<DefaultClientContext> = settings
            .base_config()
            .create()
            .map_err(|source| KafkaBusError::Client { client: "admin", brokers: settings.brokers.clone(), source })?;
        let physical: Vec<String> = topics.iter().map(|t| settings.physical(t)).collect();
        let new_topics: Vec<NewTopic<'_>> =
            physical.iter().map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(-1))).collect();
        let timeout = Duration::from_millis(settings.connect_timeout_ms.max(10_000));
        let options = AdminOptions::new().request_timeout(Some(timeout)).operation_timeout(Some(timeout));
        let results = admin.create_topics(new_topics.iter(), &options).await.map_err(|source| {
            KafkaBusError::CreateTopics { brokers: settings.brokers.clone(), topics: physical.clone(), source }
        })?;
        // Dropping the admin client joins its polling thread: do it off the runtime.
        tokio::task::spawn_blocking(move || drop(admin));
        for result in results {
            match result {
                Ok(topic) => tracing::info!(topic, partitions, "created Kafka topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(KafkaBusError::TopicRefused { brokers: settings.brokers.clone(), topic, code })
                }
            }
        }
        Ok(())
    }

    /// Sends `events` in order and waits for every acknowledgement (`acks=all`).
    pub async fn publish(&self, events: &[Event]) -> Result<(), KafkaBusError> {
        if events.is_empty() {
            return Ok(());
        }
        let producer = self.inner.producer.read().expect("producer lock").clone();
        let result = producer::publish_with(&producer, events, &self.inner.settings).await;
        if result.is_err() {
            if let Some((code, reason)) = producer.client().fatal_error() {
                tracing::error!(%code, reason, "Kafka producer hit a fatal error; replacing it");
                match producer::new_producer(&self.inner.settings) {
                    Ok(fresh) => *self.inner.producer.write().expect("producer lock") = fresh,
                    Err(e) => tracing::error!(error = %e, "cannot create a new Kafka producer"),
                }
            }
        }
        result
    }

    /// Starts a task consuming `topics` as consumer group `group` until the bus's
    /// shutdown token fires; the handle finishes once the consumer has left the group
    /// and its commits are flushed. Fails only when librdkafka rejects the consumer's
    /// configuration or the subscription.
    pub fn subscribe(
        &self,
        group: &str,
        topics: &[&str],
        handler: EventHandler,
    ) -> Result<JoinHandle<()>, KafkaBusError> {
        consumer::start(&self.inner.settings, &self.inner.shutdown, group, topics, Handling::OneByOne(handler))
    }

    /// Like [`subscribe`](Self::subscribe), handing over up to [`consumer::MAX_BATCH`] events that
    /// arrived together in one call.
    pub fn subscribe_batches(
        &self,
        group: &str,
        topics: &[&str],
        handler: BatchHandler,
    ) -> Result<JoinHandle<()>, KafkaBusError> {
        consumer::start(&self.inner.settings, &self.inner.shutdown, group, topics, Handling::Batch(handler))
    }
}
