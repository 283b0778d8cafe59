//! Events between services: a transactional outbox (the event row commits with the
//! state change), a relay that publishes outbox rows to a bus, and consumers that
//! handle each event once (a processed-event row per consumer, written in the
//! handler's own transaction). The bus is Kafka in a deployment and an in-process
//! dispatcher in the one-process default; both are fed by the same outbox. Every
//! consumer is written the same way: see [`Consumer`].

mod bus;
mod consumer;
pub mod contracts;
mod kafka;
mod outbox;
mod processed;
mod schema;

pub use bus::{BatchHandler, Bus, EventHandler, HandlerFuture, InProcessBus};
pub use consumer::{Consumer, PerBatch, PerEvent, Received};
pub use kafka::{HandlerFailed, KafkaBus, KafkaBusError, KafkaSettings};
pub use outbox::{append, append_all, append_together, run_relay, stored_events, Appended, Claim, RelayHandle};
pub use processed::{first_time, first_times};
pub use schema::install as install_schema;

use serde::{Deserialize, Serialize};

/// One event as it travels: a stable id (for de-duplication), a versioned kind, the
/// partition key (the order id, so all events of one order stay in order) and a
/// JSON payload. Documented per kind in `docs/events.md`.
///
/// The payload stays the JSON text it arrived as: a consumer that skips the event's
/// kind never parses it, and one that handles it parses it once, straight into its
/// own type ([`Event::decode`]), rather than through a map of values.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub topic: String,
    pub kind: String,
    pub version: u32,
    pub key: String,
    pub occurred_at_ms: i64,
    pub payload: Box<serde_json::value::RawValue>,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (&self.id, &self.topic, &self.kind, self.version, &self.key, self.occurred_at_ms, self.payload.get())
            == (
                &other.id,
                &other.topic,
                &other.kind,
                other.version,
                &other.key,
                other.occurred_at_ms,
                other.payload.get(),
            )
    }
}

impl Event {
    pub fn new(topic: &str, kind: &str, key: &str, payload: impl Serialize) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            topic: topic.to_owned(),
            kind: kind.to_owned(),
            version: 1,
            key: key.to_owned(),
            occurred_at_ms: crate::clock::now_millis(),
            payload: serde_json::value::to_raw_value(&payload).expect("event payloads serialise"),
        }
    }

    /// The payload as the type its kind promises.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> anyhow::Result<T> {
        serde_json::from_str(self.payload.get())
            .map_err(|e| anyhow::anyhow!("event {} ({} v{}) has a bad payload: {e}", self.id, self.kind, self.version))
    }
}
