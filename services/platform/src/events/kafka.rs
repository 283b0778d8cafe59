//! The Kafka bus (librdkafka through `rdkafka`, built from its bundled sources).
//!
//! Publishing: one idempotent producer (`enable.idempotence`, `acks=all`) per bus;
//! each event goes to `event.topic` keyed by `event.key` (so one order's events share a
//! partition and stay in order) with the JSON of the whole [`Event`] as the value.
//! [`KafkaBus::publish`] enqueues a batch in order and returns `Ok` only when every
//! event was acknowledged; any failure is an `Err` and the outbox relay sends the
//! batch again later (consumers de-duplicate by event id).
//!
//! Consuming: one task with its own consumer per [`KafkaBus::subscribe`]. The task
//! takes what has arrived (up to [`MAX_BATCH`] messages, without waiting for more) and
//! hands it to the handler in delivery order, so per-partition order is kept; a
//! failing handler is retried with capped backoff until it succeeds (an event is never
//! skipped), and only then are the offsets stored for commit (`enable.auto.offset.store
//! =false`): at-least-once delivery. librdkafka commits the stored offsets every
//! [`COMMIT_INTERVAL`] and when the consumer closes, rather than once per batch: every
//! commit is a broker request, and three consumer groups read each order event. A crash
//! redelivers at most that interval's events, which the idempotent consumers skip.
//! Batching lets a consumer handle a burst in one transaction
//! ([`KafkaBus::subscribe_batches`]); a per-event handler sees no difference.
//! A message that is not an [`Event`] at all is logged and committed past, so a
//! poison message never blocks its partition.
//!
//! Topics are not auto-created: call [`KafkaBus::ensure_topics`] (the admin API's
//! CreateTopics; "already exists" is fine) before publishing or subscribing.
//! Kafka transactions are not used (the outbox gives the atomicity).

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use anyhow::Context as _;
use futures_util::FutureExt as _;
use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    config::ClientConfig,
    consumer::{Consumer, StreamConsumer},
    error::{KafkaError, RDKafkaErrorCode},
    message::{Message, OwnedMessage},
    producer::{FutureProducer, FutureRecord, Producer},
    Offset, TopicPartitionList,
};
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{BatchHandler, Event, EventHandler, HandlerFuture};
use crate::configuration::ConfigError;

/// How a service reaches Kafka (`[kafka]` in the config file, `GOODSMALL_KAFKA__BROKERS`
/// and friends in the environment).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// Bootstrap brokers, comma separated: `kafka-0:9092,kafka-1:9092`.
    pub brokers: String,
    /// `client.id` sent to the brokers (shows in their logs and metrics).
    #[serde(default)]
    pub client_id: Option<String>,
    /// How long [`KafkaBus::connect`] waits for the brokers to answer.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// How long one publish may wait for a broker's acknowledgement before it fails
    /// (`message.timeout.ms`); the relay then retries the batch.
    #[serde(default = "default_delivery_timeout_ms")]
    pub delivery_timeout_ms: u64,
    /// Consumer group session timeout (`session.timeout.ms`): how soon a dead
    /// consumer's partitions move to another member.
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u64,
    /// Each consumer reads every partition of its topics itself (committing offsets
    /// under its group) instead of having the brokers' group coordinator share the
    /// partitions among replicas. Safe because every consumer is idempotent; meant for
    /// brokers whose group rebalancing does not recover from a killed member (tansu).
    #[serde(default)]
    pub assign_all_partitions: bool,
    /// Prefix of every topic and consumer group name (`<namespace>.goodsmall.orders.v1`),
    /// so several shops, or test runs, can share one cluster without seeing each
    /// other's events. Events keep their logical topic in the envelope.
    #[serde(default)]
    pub namespace: Option<String>,
    /// librdkafka debug contexts (`debug`), e.g. `cgrp,topic,fetch`; logged through
    /// `tracing` at debug level under the `librdkafka` target.
    #[serde(default)]
    pub debug: Option<String>,
}

fn default_connect_timeout_ms() -> u64 {
    5_000
}
fn default_delivery_timeout_ms() -> u64 {
    30_000
}
fn default_session_timeout_ms() -> u64 {
    10_000
}

impl KafkaSettings {
    /// Settings for `brokers` with every other value at its default.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            client_id: None,
            connect_timeout_ms: default_connect_timeout_ms(),
            delivery_timeout_ms: default_delivery_timeout_ms(),
            session_timeout_ms: default_session_timeout_ms(),
            namespace: None,
            assign_all_partitions: false,
            debug: None,
        }
    }

    /// The name a topic or consumer group has on the brokers.
    pub fn physical(&self, name: &str) -> String {
        match &self.namespace {
            Some(namespace) => format!("{namespace}.{name}"),
            None => name.to_owned(),
        }
    }

    /// `key` is where these settings live (`kafka` → `kafka.brokers`), for messages.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let brokers: Vec<&str> = self.brokers.split(',').map(str::trim).collect();
        if brokers.iter().all(|b| b.is_empty()) {
            return Err(ConfigError::invalid(&format!("{key}.brokers"), "is required (host:port, comma separated)"));
        }
        for broker in &brokers {
            let port = broker.rsplit_once(':').map(|(host, port)| (host, port.parse::<u16>()));
            match port {
                Some((host, Ok(port))) if !host.is_empty() && port > 0 => {}
                _ => {
                    return Err(ConfigError::invalid(
                        &format!("{key}.brokers"),
                        format!("has `{broker}`, which is not host:port (list brokers comma separated)"),
                    ))
                }
            }
        }
        if let Some(namespace) = &self.namespace {
            let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if namespace.is_empty() || namespace.len() > 100 || !namespace.chars().all(legal) {
                return Err(ConfigError::invalid(&format!("{key}.namespace"), "must be 1 to 100 of a-z, A-Z, 0-9, '.', '_', '-'"));
            }
        }
        if let Some(id) = &self.client_id {
            if id.trim().is_empty() {
                return Err(ConfigError::invalid(&format!("{key}.client_id"), "must not be empty when set"));
            }
        }
        if self.connect_timeout_ms == 0 {
            return Err(ConfigError::invalid(&format!("{key}.connect_timeout_ms"), "must be positive"));
        }
        if self.delivery_timeout_ms < 1_000 {
            return Err(ConfigError::invalid(&format!("{key}.delivery_timeout_ms"), "must be at least 1000"));
        }
        if !(1_000..=300_000).contains(&self.session_timeout_ms) {
            return Err(ConfigError::invalid(&format!("{key}.session_timeout_ms"), "must be between 1000 and 300000"));
        }
        Ok(())
    }

    fn base_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        config.set("client.id", self.client_id.as_deref().unwrap_or("goodsmall"));
        // Topics created after a consumer subscribed are noticed within seconds.
        config.set("topic.metadata.refresh.interval.ms", "10000");
        if let Some(debug) = &self.debug {
            config.set("debug", debug);
        }
        config
    }
}

/// First wait after a handler failure; doubles up to [`HANDLER_BACKOFF_MAX`].
const HANDLER_BACKOFF_START: Duration = Duration::from_millis(100);
const HANDLER_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Wait after a consumer error (broker away, rebalance trouble) before polling again.
const CONSUMER_ERROR_PAUSE: Duration = Duration::from_millis(500);
/// How often handled offsets are committed to the brokers (and at close).
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// Most messages handed to a handler at once.
pub const MAX_BATCH: usize = 256;

/// A connection to Kafka: one producer, plus one consumer task per subscription.
#[derive(Clone)]
pub struct KafkaBus {
    inner: Arc<Inner>,
}

struct Inner {
    settings: KafkaSettings,
    /// Replaced when librdkafka reports a fatal (idempotence) error, which leaves a
    /// producer unusable.
    producer: RwLock<FutureProducer>,
    shutdown: CancellationToken,
}

impl KafkaBus {
    /// Creates the producer and checks that a broker answers (cluster metadata within
    /// `connect_timeout_ms`), failing with an error naming the brokers otherwise.
    /// Consumers started by [`subscribe`](Self::subscribe) stop when `shutdown` fires.
    pub async fn connect(settings: &KafkaSettings, shutdown: CancellationToken) -> anyhow::Result<KafkaBus> {
        let producer = new_producer(settings)?;
        let probe = producer.clone();
        let timeout = Duration::from_millis(settings.connect_timeout_ms);
        let metadata = tokio::task::spawn_blocking(move || probe.client().fetch_metadata(None, timeout))
            .await
            .context("Kafka metadata probe panicked")?;
        match metadata {
            Ok(metadata) if !metadata.brokers().is_empty() => {
                tracing::info!(
                    brokers = %settings.brokers,
                    cluster_brokers = metadata.brokers().len(),
                    "connected to Kafka"
                );
            }
            Ok(_) => anyhow::bail!("Kafka at {} answered with no brokers in its metadata", settings.brokers),
            Err(e) => anyhow::bail!(
                "no Kafka broker answered at {} within {} ms: {e}",
                settings.brokers,
                settings.connect_timeout_ms
            ),
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
    pub async fn ensure_topics(&self, topics: &[&str], partitions: i32) -> anyhow::Result<()> {
        anyhow::ensure!(partitions >= 1, "a topic needs at least one partition, not {partitions}");
        if topics.is_empty() {
            return Ok(());
        }
        let admin: AdminClient<DefaultClientContext> =
            self.inner.settings.base_config().create().context("cannot create a Kafka admin client")?;
        let physical: Vec<String> = topics.iter().map(|t| self.inner.settings.physical(t)).collect();
        let new_topics: Vec<NewTopic<'_>> =
            physical.iter().map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(-1))).collect();
        let timeout = Duration::from_millis(self.inner.settings.connect_timeout_ms.max(10_000));
        let options = AdminOptions::new().request_timeout(Some(timeout)).operation_timeout(Some(timeout));
        let results = admin
            .create_topics(new_topics.iter(), &options)
            .await
            .with_context(|| format!("Kafka at {} did not create topics {topics:?}", self.inner.settings.brokers))?;
        for result in results {
            match result {
                Ok(topic) => tracing::info!(topic, partitions, "created Kafka topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => anyhow::bail!(
                    "Kafka at {} refused to create topic {topic}: {code}",
                    self.inner.settings.brokers
                ),
            }
        }
        // Dropping the admin client joins its polling thread: do it off the runtime.
        tokio::task::spawn_blocking(move || drop(admin));
        Ok(())
    }

    /// Sends `events` in order and waits for every acknowledgement (`acks=all`).
    pub async fn publish(&self, events: &[Event]) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let producer = self.inner.producer.read().expect("producer lock").clone();
        let result = publish_with(&producer, events, &self.inner.settings).await;
        if result.is_err() {
            if let Some((code, reason)) = producer.client().fatal_error() {
                tracing::error!(%code, reason, "Kafka producer hit a fatal error; replacing it");
                match new_producer(&self.inner.settings) {
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
    pub fn subscribe(&self, group: &str, topics: &[&str], handler: EventHandler) -> anyhow::Result<JoinHandle<()>> {
        self.start_consumer(group, topics, Handling::OneByOne(handler))
    }

    /// Like [`subscribe`](Self::subscribe), handing over up to [`MAX_BATCH`] events that
    /// arrived together in one call.
    pub fn subscribe_batches(&self, group: &str, topics: &[&str], handler: BatchHandler) -> anyhow::Result<JoinHandle<()>> {
        self.start_consumer(group, topics, Handling::Batch(handler))
    }

    fn start_consumer(&self, group: &str, topics: &[&str], handling: Handling) -> anyhow::Result<JoinHandle<()>> {
        anyhow::ensure!(!topics.is_empty(), "consumer group {group} subscribes to no topic");
        let settings = &self.inner.settings;
        let mut config = settings.base_config();
        let physical_topics: Vec<String> = topics.iter().map(|t| settings.physical(t)).collect();
        let physical_topics: Vec<&str> = physical_topics.iter().map(String::as_str).collect();
        config
            .set("group.id", settings.physical(group))
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", COMMIT_INTERVAL.as_millis().to_string())
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", settings.session_timeout_ms.to_string())
            .set("heartbeat.interval.ms", (settings.session_timeout_ms / 4).max(250).to_string());
        let consumer: StreamConsumer =
            config.create().with_context(|| format!("cannot create a Kafka consumer for group {group}"))?;
        if settings.assign_all_partitions {
            let timeout = Duration::from_millis(settings.connect_timeout_ms.max(10_000));
            let mut partitions = TopicPartitionList::new();
            for topic in &physical_topics {
                let metadata = consumer.fetch_metadata(Some(topic), timeout).with_context(|| format!("no metadata for topic {topic}"))?;
                let found = metadata.topics().iter().flat_map(|t| t.partitions()).map(|p| p.id()).collect::<Vec<_>>();
                anyhow::ensure!(!found.is_empty(), "topic {topic} has no partitions (create it first)");
                for partition in found {
                    partitions.add_partition_offset(topic, partition, Offset::Stored)?;
                }
            }
            consumer.assign(&partitions).with_context(|| format!("consumer group {group} cannot take {topics:?}"))?;
        } else {
            consumer
                .subscribe(&physical_topics)
                .with_context(|| format!("consumer group {group} cannot subscribe to {topics:?}"))?;
        }
        let group = group.to_owned();
        let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        let shutdown = self.inner.shutdown.clone();
        tracing::info!(group, ?topics, brokers = %settings.brokers, "Kafka consumer started");
        Ok(tokio::spawn(async move {
            consume(&consumer, &group, &handling, &shutdown).await;
            // Closing leaves the group and waits for outstanding commits; it blocks.
            let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
            tracing::info!(group, ?topics, "Kafka consumer stopped");
        }))
    }
}

fn new_producer(settings: &KafkaSettings) -> anyhow::Result<FutureProducer> {
    let mut config = settings.base_config();
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", settings.delivery_timeout_ms.to_string())
        .set("linger.ms", "5");
    config.create().with_context(|| format!("cannot create a Kafka producer for {}", settings.brokers))
}

async fn publish_with(producer: &FutureProducer, events: &[Event], settings: &KafkaSettings) -> anyhow::Result<()> {
    let payloads: Vec<Vec<u8>> =
        events.iter().map(|e| serde_json::to_vec(e).expect("events serialise")).collect();
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
                Err((e, _)) => {
                    return Err(anyhow::anyhow!(
                        "Kafka producer for {} cannot send event {} ({}) to {}: {e}",
                        settings.brokers,
                        event.id,
                        event.kind,
                        event.topic
                    ))
                }
            }
        };
        deliveries.push(delivery);
    }
    for (event, delivery) in events.iter().zip(deliveries) {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => anyhow::bail!(
                "Kafka at {} did not accept event {} ({}) for {}: {e}",
                settings.brokers,
                event.id,
                event.kind,
                event.topic
            ),
            Err(_) => anyhow::bail!("Kafka producer dropped event {} ({}) before delivery", event.id, event.kind),
        }
    }
    Ok(())
}

/// How a subscription hands events over.
enum Handling {
    /// One event at a time; a failing event is retried alone, after the ones before it.
    OneByOne(EventHandler),
    /// Everything that arrived together; a failure retries the whole batch.
    Batch(BatchHandler),
}

/// The consumer loop: wait for a message, take whatever else is already there, handle
/// it until it succeeds, then store the offsets past it for the next commit.
async fn consume(consumer: &StreamConsumer, group: &str, handling: &Handling, shutdown: &CancellationToken) {
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => return,
            received = consumer.recv() => received,
        };
        let first = match received {
            Ok(message) => message.detach(),
            Err(e) => {
                tracing::warn!(group, error = %e, "Kafka consumer error; polling again");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(CONSUMER_ERROR_PAUSE) => continue,
                }
            }
        };
        let mut messages = vec![first];
        while messages.len() < MAX_BATCH {
            match consumer.recv().now_or_never() {
                Some(Ok(message)) => messages.push(message.detach()),
                // An error shows again at the next wait, after this batch.
                Some(Err(_)) | None => break,
            }
        }
        let events: Vec<Option<Event>> = messages.iter().map(|m| decode(m, group)).collect();
        match handling {
            Handling::OneByOne(handler) => {
                for (index, event) in events.into_iter().enumerate() {
                    let Some(event) = event else { continue };
                    let about = std::slice::from_ref(&event);
                    if !handle_until_ok(|| handler(event.clone()), about, group, shutdown).await {
                        // Shut down while retrying: keep what was handled (committed at
                        // close); this one comes again.
                        store_offsets_past(consumer, group, &messages[..index]);
                        return;
                    }
                }
            }
            Handling::Batch(handler) => {
                let events: Vec<Event> = events.into_iter().flatten().collect();
                if !events.is_empty() && !handle_until_ok(|| handler(events.clone()), &events, group, shutdown).await {
                    return; // not committed, so the batch comes again
                }
            }
        }
        store_offsets_past(consumer, group, &messages);
    }
}

/// The event in `message`; `None` (logged) for a message that is not one, which is
/// then committed past, so a poison message never blocks its partition.
fn decode(message: &OwnedMessage, group: &str) -> Option<Event> {
    let problem = match message.payload().map(serde_json::from_slice::<Event>) {
        Some(Ok(event)) => return Some(event),
        Some(Err(e)) => e.to_string(),
        None => "it has no value".to_owned(),
    };
    tracing::error!(
        group,
        topic = message.topic(),
        partition = message.partition(),
        offset = message.offset(),
        problem,
        "skipping a Kafka message that is not an event"
    );
    None
}

/// Stores, per partition, the offset after the last of `messages` for the next commit.
fn store_offsets_past(consumer: &StreamConsumer, group: &str, messages: &[OwnedMessage]) {
    let mut next: Vec<(&str, i32, i64)> = Vec::new();
    for message in messages {
        let offset = message.offset() + 1;
        match next.iter_mut().find(|(t, p, _)| *t == message.topic() && *p == message.partition()) {
            Some(entry) => entry.2 = entry.2.max(offset),
            None => next.push((message.topic(), message.partition(), offset)),
        }
    }
    if next.is_empty() {
        return;
    }
    let mut position = TopicPartitionList::new();
    for (topic, partition, offset) in next {
        if let Err(e) = position.add_partition_offset(topic, partition, Offset::Offset(offset)) {
            tracing::error!(group, topic, partition, offset, error = %e, "cannot build a Kafka offset");
            return;
        }
    }
    if let Err(e) = consumer.store_offsets(&position) {
        // The events were handled; a lost offset only means they may be delivered again.
        tracing::warn!(group, error = %e, "storing Kafka offsets failed");
    }
}

/// Calls `handle` until it returns `Ok` (→ `true`), waiting longer after each failure;
/// `false` when shut down before it succeeded. `about`: the events, for the log.
async fn handle_until_ok(handle: impl Fn() -> HandlerFuture, about: &[Event], group: &str, shutdown: &CancellationToken) -> bool {
    let mut backoff = HANDLER_BACKOFF_START;
    let mut failures = 0u32;
    loop {
        match handle().await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(group, event_id = %about[0].id, events = about.len(), failures, "events handled after retries");
                }
                return true;
            }
            Err(e) => {
                failures += 1;
                tracing::error!(
                    group,
                    event_id = %about[0].id,
                    kind = %about[0].kind,
                    topic = %about[0].topic,
                    events = about.len(),
                    failures,
                    retry_in_ms = backoff.as_millis() as u64,
                    error = format!("{e:#}"),
                    "event handler failed; retrying"
                );
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(HANDLER_BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_deserialise_with_defaults_and_reject_unknown_fields() {
        let s: KafkaSettings = serde_json::from_value(serde_json::json!({ "brokers": "k1:9092,k2:9092" })).unwrap();
        assert_eq!(s.brokers, "k1:9092,k2:9092");
        assert_eq!(s.client_id, None);
        assert_eq!(s.connect_timeout_ms, 5_000);
        s.validate("kafka").unwrap();

        let err = serde_json::from_value::<KafkaSettings>(serde_json::json!({ "brokers": "k:1", "bokers": "x" }))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bokers"), "{err}");
    }

    #[test]
    fn validation_names_the_setting() {
        let err = KafkaSettings::new("").validate("kafka").unwrap_err().to_string();
        assert!(err.contains("kafka.brokers") && err.contains("GOODSMALL_KAFKA__BROKERS"), "{err}");
        let err = KafkaSettings::new("k1:9092,nohost").validate("order.kafka").unwrap_err().to_string();
        assert!(err.contains("order.kafka.brokers") && err.contains("nohost"), "{err}");
        let mut s = KafkaSettings::new("k:9092");
        s.client_id = Some(" ".into());
        assert!(s.validate("kafka").unwrap_err().to_string().contains("kafka.client_id"));
        let mut s = KafkaSettings::new("k:9092");
        s.delivery_timeout_ms = 10;
        assert!(s.validate("kafka").unwrap_err().to_string().contains("kafka.delivery_timeout_ms"));
    }
}
