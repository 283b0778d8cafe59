//! What can go wrong between a service and Kafka, with the librdkafka error kept as the
//! cause, so a log line says which broker, topic, group or event it was about.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum KafkaBusError {
    #[error("no Kafka broker answered at {brokers} within {timeout_ms} ms")]
    Unreachable {
        brokers: String,
        timeout_ms: u64,
        #[source]
        source: KafkaError,
    },
    #[error("Kafka at {brokers} answered with no brokers in its metadata")]
    NoBrokers { brokers: String },
    #[error("librdkafka refused the {client} configuration for {brokers}")]
    Client {
        client: &'static str,
        brokers: String,
        #[source]
        source: KafkaError,
    },
    #[error("a topic needs at least one partition, not {0}")]
    NoPartitions(i32),
    #[error("Kafka at {brokers} did not create topics {topics:?}")]
    CreateTopics {
        brokers: String,
        topics: Vec<String>,
        #[source]
        source: KafkaError,
    },
    #[error("Kafka at {brokers} refused to create topic {topic}: {code}")]
    TopicRefused { brokers: String, topic: String, code: RDKafkaErrorCode },
    #[error("the Kafka producer for {brokers} cannot send event {event_id} ({kind}) to {topic}")]
    Send {
        brokers: String,
        event_id: String,
        kind: String,
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error("Kafka at {brokers} did not acknowledge event {event_id} ({kind}) for {topic}")]
    NotAcknowledged {
        brokers: String,
        event_id: String,
        kind: String,
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error("the Kafka producer dropped event {event_id} ({kind}) before its delivery report")]
    Dropped { event_id: String, kind: String },
    #[error("consumer group {group} subscribes to no topic")]
    NoTopics { group: String },
    #[error("consumer group {group} cannot subscribe to {topics:?}")]
    Subscribe {
        group: String,
        topics: Vec<String>,
        #[source]
        source: KafkaError,
    },
}

/// A consumer's handler failed on some events; the consumer retries them (logged with
/// this error and its whole cause chain).
#[derive(Debug, thiserror::Error)]
#[error("consumer group {group} failed on {count} event(s) from event {first_id} ({first_kind}) on {topic}")]
pub struct HandlerFailed {
    pub group: String,
    pub count: usize,
    pub first_id: String,
    pub first_kind: String,
    pub topic: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}
