//! One way to write a consumer. A consumer declares its group, its topics, the kinds it
//! handles and their payload type ([`Consumer`]), and how it takes them: one event at a
//! time ([`PerEvent`]) or what arrived together ([`PerBatch`]). [`Bus::consume`] and
//! [`Bus::consume_batches`] subscribe it: each event's kind is checked and its payload
//! decoded once, here; a kind it does not handle is skipped, and so is (logged) a
//! payload that does not decode, so one bad message never blocks a partition.
//!
//! Idempotence stays the consumer's: in the transaction of its effect it calls
//! [`Consumer::first_time`] (or [`Consumer::first_times`] for a batch), which record
//! the event under the consumer's group, so a redelivered event changes nothing.

use std::{future::Future, sync::Arc};

use serde::de::DeserializeOwned;
use sqlx::{Any, Transaction};

use super::{processed, BatchHandler, Bus, Event, EventHandler};

/// What a consumer reads. Every constant is read by the framework; `GROUP` is also the
/// consumer's name in `processed_events`.
pub trait Consumer: Send + Sync + 'static {
    /// The consumer group (docs/events.md lists them).
    const GROUP: &'static str;
    /// The topics it reads.
    const TOPICS: &'static [&'static str];
    /// The kinds it handles; events of any other kind are skipped, undecoded.
    const KINDS: &'static [&'static str];
    /// The payload of those kinds.
    type Payload: DeserializeOwned + Send + Sync + 'static;

    /// Records, in the transaction of the event's effect, that this consumer handles
    /// `event`; `false` means it did before: skip it (the transaction changes nothing).
    fn first_time<'a>(
        tx: &'a mut Transaction<'_, Any>,
        event: &'a Received<Self::Payload>,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send + 'a {
        processed::first_time(tx, Self::GROUP, &event.id)
    }

    /// [`first_time`](Self::first_time) for a batch, a few statements in all: the
    /// events this consumer has not handled before, in order, each once.
    fn first_times(
        tx: &mut Transaction<'_, Any>,
        events: Vec<Received<Self::Payload>>,
    ) -> impl Future<Output = Result<Vec<Received<Self::Payload>>, sqlx::Error>> + Send {
        async move {
            let mut fresh = {
                let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
                processed::first_times(tx, Self::GROUP, &ids).await?
            };
            // `remove`: an event delivered twice in the batch is handled once.
            Ok(events.into_iter().filter(|e| fresh.remove(&e.id)).collect())
        }
    }
}

/// Declares what a consumer reads ([`Consumer`]) in one statement: its group, the
/// payload type, the topics and the kinds it handles.
///
/// ```ignore
/// goodsmall_platform::consumer!(OrderSaga in "order-saga" reads PaymentEvent;
///     from [PAYMENTS_TOPIC] of [kinds::PAYMENT_SUCCEEDED, kinds::PAYMENT_FAILED]);
/// ```
#[macro_export]
macro_rules! consumer {
    ($consumer:ident in $group:literal reads $payload:ty; from [$($topic:expr),+] of [$($kind:expr),+ $(,)?]) => {
        impl $crate::events::Consumer for $consumer {
            const GROUP: &'static str = $group;
            const TOPICS: &'static [&'static str] = &[$($topic),+];
            const KINDS: &'static [&'static str] = &[$($kind),+];
            type Payload = $payload;
        }
    };
}

/// A consumer that handles each event on its own: a failure retries that event.
pub trait PerEvent: Consumer {
    fn handle(&self, event: Received<Self::Payload>) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// A consumer that handles what arrived together (in delivery order, at most a few
/// hundred events, never none) in one call, so it can commit them in one transaction:
/// `begin`, [`Consumer::first_times`], the effects, `commit`. A failure retries the
/// whole batch.
pub trait PerBatch: Consumer {
    fn handle_batch(&self, events: Vec<Received<Self::Payload>>) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// An event of a kind its consumer handles, with its payload decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Received<P> {
    pub id: String,
    /// One of the consumer's [`Consumer::KINDS`].
    pub kind: &'static str,
    pub occurred_at_ms: i64,
    pub payload: P,
}

impl<P> Received<P> {
    /// `None` for a kind `C` does not handle, and for a payload that does not decode
    /// (logged).
    fn of<C: Consumer<Payload = P>>(event: Event) -> Option<Self>
    where
        P: DeserializeOwned,
    {
        let kind = *C::KINDS.iter().find(|kind| **kind == event.kind)?;
        match event.decode() {
            Ok(payload) => Some(Self { id: event.id, kind, occurred_at_ms: event.occurred_at_ms, payload }),
            Err(e) => {
                tracing::error!(group = C::GROUP, error = %e, "skipping an undecodable event");
                None
            }
        }
    }
}

impl Bus {
    /// Starts `consumer` (see [`Bus::subscribe`]), one event at a time.
    pub fn consume<C: PerEvent>(&self, consumer: C) {
        let consumer = Arc::new(consumer);
        let handler: EventHandler = Arc::new(move |event| {
            let consumer = consumer.clone();
            Box::pin(async move {
                match Received::of::<C>(event) {
                    Some(event) => consumer.handle(event).await,
                    None => Ok(()),
                }
            })
        });
        self.subscribe(C::GROUP, C::TOPICS, handler);
    }

    /// Starts `consumer` (see [`Bus::subscribe_batches`]) with the events that arrived
    /// together.
    pub fn consume_batches<C: PerBatch>(&self, consumer: C) {
        let consumer = Arc::new(consumer);
        let handler: BatchHandler = Arc::new(move |events| {
            let consumer = consumer.clone();
            Box::pin(async move {
                let events: Vec<Received<C::Payload>> = events.into_iter().filter_map(Received::of::<C>).collect();
                if events.is_empty() {
                    return Ok(());
                }
                consumer.handle_batch(events).await
            })
        });
        self.subscribe_batches(C::GROUP, C::TOPICS, handler);
    }
}
