//! The transactional outbox: an event is written in the transaction of the state change
//! it describes, so it is published if and only if that change commits. A row holds
//! one event, or, for a batch of events of distinct keys made together (the order
//! writer's `order.created`), as many as fit ([`append_together`]): a drop's purchases
//! then cost the outbox one row and one mark per few dozen orders rather than per order.
//!
//! - [`claims`]: a committer publishes what it appended from memory after its commit;
//! - [`relay`]: the relay publishes whatever is left, and the direct publisher what is
//!   claimed.

mod claims;
mod relay;

pub use claims::{Claim, RelayHandle};
pub use relay::run_relay;
use sqlx::{Any, Transaction};

use super::Event;
use crate::clock::now_millis;

/// The longest body a row holds: the MySQL column is `VARCHAR(12000)` (characters; a
/// byte count is never below it).
const BODY_LIMIT: usize = 12_000;
/// Rows per INSERT statement.
const ROWS_PER_STATEMENT: usize = 200;

/// One outbox row: its id (`event_id`, the first event's id) and the events it holds.
#[derive(Debug, Clone)]
pub(crate) struct OutboxRow {
    id: String,
    events: Vec<Event>,
}

/// What a transaction appended, as rows: hand it to [`RelayHandle::claim`] to publish it
/// from memory once the transaction commits.
#[derive(Debug, Default)]
pub struct Appended {
    rows: Vec<OutboxRow>,
}

impl Appended {
    /// Adds what another append of the same transaction wrote.
    pub fn extend(&mut self, other: Appended) {
        self.rows.extend(other.rows);
    }

    /// The events, in the order they were appended.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.rows.iter().flat_map(|row| &row.events)
    }

    /// Rows written.
    pub fn rows(&self) -> usize {
        self.rows.len()
    }
}

/// Writes `event` in the caller's transaction, as a row of its own.
pub async fn append(tx: &mut Transaction<'_, Any>, event: Event) -> Result<Appended, sqlx::Error> {
    append_all(tx, vec![event]).await
}

/// Writes each event as a row of its own, with one multi-row statement per chunk. A
/// later event of one key waits for an earlier one the relay cannot publish yet, and
/// only for it.
pub async fn append_all(tx: &mut Transaction<'_, Any>, events: Vec<Event>) -> Result<Appended, sqlx::Error> {
    let rows =
        events.into_iter().map(|event| Ok((event_body(&event)?, vec![event]))).collect::<Result<_, sqlx::Error>>()?;
    insert(tx, rows).await
}

/// Writes events made together, each of a key of its own (new orders), as few rows as
/// their bodies fit in. They are published together too: a later event of any of their
/// keys waits for the whole row.
pub async fn append_together(tx: &mut Transaction<'_, Any>, events: Vec<Event>) -> Result<Appended, sqlx::Error> {
    let mut rows = Vec::new();
    let mut body = String::new();
    let mut held: Vec<Event> = Vec::new();
    for event in events {
        let json = event_body(&event)?;
        // "[" + the bodies with commas + "]".
        if !held.is_empty() && body.len() + json.len() + 2 > BODY_LIMIT {
            rows.push(finish_row(&mut body, std::mem::take(&mut held)));
        }
        body.push(if held.is_empty() { '[' } else { ',' });
        body.push_str(&json);
        held.push(event);
    }
    if !held.is_empty() {
        rows.push(finish_row(&mut body, held));
    }
    insert(tx, rows).await
}

/// The events an outbox row's body holds: one event (a JSON object, as every row was
/// before rows held several) or several (a JSON array).
pub fn stored_events(body: &str) -> Result<Vec<Event>, serde_json::Error> {
    if body.trim_start().starts_with('[') {
        serde_json::from_str(body)
    } else {
        Ok(vec![serde_json::from_str(body)?])
    }
}

fn event_body(event: &Event) -> Result<String, sqlx::Error> {
    serde_json::to_string(event).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// A row of `events` whose bodies `body` holds as an array; a row of one event keeps the
/// single object, as readers of the one-event form expect.
fn finish_row(body: &mut String, events: Vec<Event>) -> (String, Vec<Event>) {
    let mut text = std::mem::take(body);
    if events.len() == 1 {
        text.remove(0);
    } else {
        text.push(']');
    }
    (text, events)
}

async fn insert(tx: &mut Transaction<'_, Any>, rows: Vec<(String, Vec<Event>)>) -> Result<Appended, sqlx::Error> {
    let now = now_millis();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let marks = vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!("INSERT INTO outbox_events (event_id, topic, event_key, body, created_at) VALUES {marks}");
        let mut query = sqlx::query(&sql);
        for (body, events) in chunk {
            let first = &events[0];
            query = query.bind(&first.id).bind(&first.topic).bind(&first.key).bind(body).bind(now);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(Appended { rows: rows.into_iter().map(|(_, events)| OutboxRow { id: events[0].id.clone(), events }).collect() })
}
