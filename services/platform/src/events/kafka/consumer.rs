//! Consuming: one task with its own consumer per subscription, a member of its
//! consumer group (the brokers' group coordinator shares the partitions among the
//! replicas and moves a dead replica's partitions to the others). The task takes what
//! has arrived (up to [`MAX_BATCH`] messages, without waiting for more) and hands it to
//! the handler in delivery order, so per-partition order is kept; a failing handler is
//! retried with capped backoff until it succeeds (an event is never skipped), and only
//! then are the offsets stored for commit (`enable.auto.offset.store=false`):
//! at-least-once delivery. librdkafka commits the stored offsets every
//! [`COMMIT_INTERVAL`], when partitions are revoked in a rebalance, and when the
//! consumer closes, rather than once per batch: every commit is a broker request, and
//! three consumer groups read each order event. A crash or a rebalance redelivers at
//! most that interval's events (and a batch in flight), which the idempotent consumers
//! skip. A message that is not an [`Event`] at all is logged and committed past, so a
//! poison message never blocks its partition.

use std::time::Duration;

use futures_util::FutureExt as _;
use rdkafka::{
    client::ClientContext,
    consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer},
    message::{Message, OwnedMessage},
    Offset, TopicPartitionList,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{HandlerFailed, KafkaBusError, KafkaSettings};
use crate::events::{BatchHandler, Event, EventHandler, HandlerFuture};

/// First wait after a handler failure; doubles up to [`HANDLER_BACKOFF_MAX`].
const HANDLER_BACKOFF_START: Duration = Duration::from_millis(100);
const HANDLER_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Wait after a consumer error (broker away, rebalance trouble) before polling again.
const CONSUMER_ERROR_PAUSE: Duration = Duration::from_millis(500);
/// How often handled offsets are committed to the brokers (and at close).
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// Most messages handed to a handler at once.
pub(super) const MAX_BATCH: usize = 256;

/// Creates the consumer, joins `group` for `topics` and spawns its loop.
pub(super) fn start(
    settings: &KafkaSettings,
    shutdown: &CancellationToken,
    group: &str,
    topics: &[&str],
    handling: Handling,
) -> Result<JoinHandle<()>, KafkaBusError> {
    if topics.is_empty() {
        return Err(KafkaBusError::NoTopics { group: group.to_owned() });
    }
    let mut config = settings.base_config();
    config
        .set("group.id", settings.physical(group))
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", COMMIT_INTERVAL.as_millis().to_string())
        .set("enable.auto.offset.store", "false")
        .set("statistics.interval.ms", STATS_INTERVAL.as_millis().to_string())
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", settings.session_timeout_ms.to_string())
        .set("heartbeat.interval.ms", (settings.session_timeout_ms / 4).max(250).to_string());
    let consumer: GroupConsumer = config
        .create_with_context(GroupMember { group: group.to_owned() })
        .map_err(|source| KafkaBusError::Client { client: "consumer", brokers: settings.brokers.clone(), source })?;
    crate::metrics::consumer_started(group, &kinds_of(topics));
    let physical_topics: Vec<String> = topics.iter().map(|t| settings.physical(t)).collect();
    let physical_topics: Vec<&str> = physical_topics.iter().map(String::as_str).collect();
    let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
    consumer.subscribe(&physical_topics).map_err(|source| KafkaBusError::Subscribe {
        group: group.to_owned(),
        topics: topics.clone(),
        source,
    })?;
    let group = group.to_owned();
    let shutdown = shutdown.clone();
    tracing::info!(group, ?topics, brokers = %settings.brokers, "Kafka consumer started");
    Ok(tokio::spawn(async move {
        consume(&consumer, &group, &handling, &shutdown).await;
        // Closing leaves the group and waits for outstanding commits; it blocks.
        let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
        tracing::info!(group, ?topics, "Kafka consumer stopped");
    }))
}

type GroupConsumer = StreamConsumer<GroupMember>;

/// The event kinds the topics carry (docs/events.md), for the handler series' zeros.
fn kinds_of(topics: &[&str]) -> Vec<&'static str> {
    use crate::events::contracts::{kinds::*, CHECKOUTS_TOPIC, ORDERS_TOPIC, PAYMENTS_TOPIC};
    let mut out = Vec::new();
    for topic in topics {
        match *topic {
            ORDERS_TOPIC => out.extend([ORDER_CREATED, ORDER_COMPLETED, ORDER_FAILED, ORDER_CANCELED, ORDER_RETURNED]),
            PAYMENTS_TOPIC => out.extend([PAYMENT_SUCCEEDED, PAYMENT_FAILED, PAYMENT_EXPIRED]),
            CHECKOUTS_TOPIC => out.push(CHECKOUT_PLACED),
            _ => {}
        }
    }
    out
}

/// Logs what the group coordinator gives and takes away, so an operator (and the
/// rebalance test) can see how the partitions are shared among the replicas.
struct GroupMember {
    group: String,
}

impl ClientContext for GroupMember {
    /// librdkafka's statistics (every [`STATS_INTERVAL`]) carry each assigned
    /// partition's lag: `goodsmall_kafka_consumer_lag{group,topic,partition}`.
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                // -1 is librdkafka's internal partition; a lag of -1 is not known (yet).
                if *partition >= 0 && p.consumer_lag >= 0 && p.fetch_state == "active" {
                    crate::metrics::record_consumer_lag(&self.group, topic, *partition, p.consumer_lag);
                }
            }
        }
    }
}

/// How often librdkafka reports its statistics (the consumer lag among them).
const STATS_INTERVAL: Duration = Duration::from_secs(1);

impl ConsumerContext for GroupMember {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                tracing::info!(group = self.group, partitions = %partition_list(partitions),
                    "Kafka partitions assigned")
            }
            Rebalance::Revoke(partitions) => {
                tracing::info!(group = self.group, partitions = %partition_list(partitions), "Kafka partitions revoked")
            }
            Rebalance::Error(e) => tracing::warn!(group = self.group, error = %e, "Kafka rebalance failed"),
        }
    }
}

/// `topic:0,2,4 other:1`, topics in name order.
fn partition_list(partitions: &TopicPartitionList) -> String {
    let mut by_topic: std::collections::BTreeMap<String, Vec<i32>> = Default::default();
    for element in partitions.elements() {
        by_topic.entry(element.topic().to_owned()).or_default().push(element.partition());
    }
    by_topic
        .into_iter()
        .map(|(topic, mut ids)| {
            ids.sort_unstable();
            format!("{topic}:{}", ids.iter().map(i32::to_string).collect::<Vec<_>>().join(","))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// How a subscription hands events over.
pub(super) enum Handling {
    /// One event at a time; a failing event is retried alone, after the ones before it.
    OneByOne(EventHandler),
    /// Everything that arrived together; a failure retries the whole batch.
    Batch(BatchHandler),
}

/// The consumer loop: wait for a message, take whatever else is already there, handle
/// it until it succeeds, then store the offsets past it for the next commit.
async fn consume(consumer: &GroupConsumer, group: &str, handling: &Handling, shutdown: &CancellationToken) {
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
fn store_offsets_past(consumer: &GroupConsumer, group: &str, messages: &[OwnedMessage]) {
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
async fn handle_until_ok(
    handle: impl Fn() -> HandlerFuture,
    about: &[Event],
    group: &str,
    shutdown: &CancellationToken,
) -> bool {
    let mut backoff = HANDLER_BACKOFF_START;
    let mut failures = 0u32;
    loop {
        match handle().await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(group, event_id = %about[0].id, events = about.len(), failures,
                        "events handled after retries");
                }
                return true;
            }
            Err(e) => {
                failures += 1;
                crate::metrics::record_handler_failure(group, &about[0].kind, !shutdown.is_cancelled());
                let failed = HandlerFailed {
                    group: group.to_owned(),
                    count: about.len(),
                    first_id: about[0].id.clone(),
                    first_kind: about[0].kind.clone(),
                    topic: about[0].topic.clone(),
                    source: e.into(),
                };
                tracing::error!(
                    group,
                    event_id = %about[0].id,
                    failures,
                    retry_in_ms = backoff.as_millis() as u64,
                    error = %crate::telemetry::Causes(&failed),
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
