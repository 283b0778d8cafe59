//! The transactional outbox and its relay.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use sqlx::{Any, Row, Transaction};
use tokio::{
    sync::{mpsc, Notify},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use super::{Bus, Event};
use crate::{
    clock::now_millis,
    db::{Database, HeldConnection},
};

/// Writes `event` in the caller's transaction: it is published if and only if the
/// state change it describes commits.
pub async fn append(tx: &mut Transaction<'_, Any>, event: &Event) -> Result<(), sqlx::Error> {
    append_all(tx, std::slice::from_ref(event)).await
}

/// Writes many events with one multi-row statement per chunk (the purchase hot path
/// commits a batch of orders at a time).
pub async fn append_all(tx: &mut Transaction<'_, Any>, events: &[Event]) -> Result<(), sqlx::Error> {
    let now = now_millis();
    for chunk in events.chunks(200) {
        let rows = vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!("INSERT INTO outbox_events (event_id, topic, event_key, body, created_at) VALUES {rows}");
        let mut query = sqlx::query(&sql);
        for event in chunk {
            query = query
                .bind(&event.id)
                .bind(&event.topic)
                .bind(&event.key)
                .bind(serde_json::to_string(event).expect("events serialise"))
                .bind(now);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Wakes the relay right after a commit, so events do not wait for the next poll, and
/// carries the events a committer publishes itself ([`RelayHandle::claim`]) to the
/// direct publisher that [`run_relay`] starts beside the relay.
#[derive(Clone, Default)]
pub struct RelayHandle(Arc<Shared>);

#[derive(Default)]
struct Shared {
    wake: Notify,
    claims: Mutex<Claims>,
    /// Set by [`run_relay`]: where claimed events go once committed.
    direct: OnceLock<mpsc::Sender<Vec<Event>>>,
}

/// What the relay leaves to the direct publisher.
#[derive(Default)]
struct Claims {
    /// Claimed and not yet published and marked (or given back).
    live: HashSet<String>,
    /// Published and marked since the relay's current pass began: a row its query read
    /// before the mark may still look unpublished to it.
    marked: HashSet<String>,
    /// The relay held back a row behind a claimed one of the same key.
    held_back: bool,
}

impl RelayHandle {
    pub fn wake(&self) {
        self.0.wake.notify_one();
    }

    /// Called before committing the transaction that appended `events`: the relay
    /// leaves them, and any later event with the same key, to [`Claim::publish`]
    /// after the commit. Dropped unpublished (the commit failed or was never made),
    /// the claim gives them back to the relay. With no direct publisher running (no
    /// [`run_relay`] for this handle), publishing the claim only wakes the relay.
    pub fn claim(&self, events: Vec<Event>) -> Claim {
        let direct = self.0.direct.get().is_some() && !events.is_empty();
        if direct {
            let mut claims = self.claims();
            claims.live.extend(events.iter().map(|e| e.id.clone()));
        }
        Claim { handle: self.clone(), events, direct }
    }

    fn claims(&self) -> std::sync::MutexGuard<'_, Claims> {
        self.0.claims.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The events are no longer claimed: `marked` when they were published and marked.
    fn release(&self, events: &[Event], marked: bool) {
        let wake = {
            let mut claims = self.claims();
            for event in events {
                claims.live.remove(&event.id);
                if marked {
                    claims.marked.insert(event.id.clone());
                }
            }
            !marked || std::mem::take(&mut claims.held_back)
        };
        if wake {
            self.wake();
        }
    }
}

/// Events appended in a transaction not yet committed, which the relay leaves alone
/// (see [`RelayHandle::claim`]).
#[must_use = "a claim is published after the commit, or dropped to give the events back to the relay"]
pub struct Claim {
    handle: RelayHandle,
    events: Vec<Event>,
    direct: bool,
}

impl Claim {
    /// Call once the transaction committed: the direct publisher sends the events from
    /// memory and marks their rows published. Should it be busy (its queue full), they
    /// go back to the relay.
    pub fn publish(mut self) {
        if !self.direct {
            self.handle.wake();
            return;
        }
        let events = std::mem::take(&mut self.events);
        let sender = self.handle.0.direct.get().expect("a direct claim has a publisher");
        if let Err(e) = sender.try_send(events) {
            let events = match e {
                mpsc::error::TrySendError::Full(events) | mpsc::error::TrySendError::Closed(events) => events,
            };
            self.handle.release(&events, false);
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.direct && !self.events.is_empty() {
            self.handle.release(&self.events, false);
        }
    }
}

const BATCH: i64 = 500;
const IDLE_POLL: Duration = Duration::from_millis(200);
/// Published rows are kept this long for inspection, then deleted.
const RETENTION_MS: i64 = 24 * 3600 * 1000;

/// Batches of claimed events waiting for the direct publisher; beyond that, claims go
/// back to the relay.
const DIRECT_QUEUE: usize = 256;

/// Publishes unpublished outbox rows in commit order until `shutdown`. A row is marked
/// published only after the bus accepted it, so a crash re-publishes (consumers are
/// idempotent) and never loses one. Beside it runs the direct publisher of `handle`'s
/// claims ([`RelayHandle::claim`]): events committed by a caller that hands them over
/// are published from memory and their rows marked in one statement, with no read of
/// the outbox; the relay skips them (and the later rows of their keys) while claimed,
/// and takes them like any other row should the direct publisher fail or the process
/// stop before their mark.
pub fn run_relay(db: Database, bus: Bus, handle: RelayHandle, shutdown: CancellationToken) -> JoinHandle<()> {
    let (direct, inbox) = mpsc::channel(DIRECT_QUEUE);
    let publisher = if handle.0.direct.set(direct).is_ok() {
        Some(tokio::spawn(publish_claimed(db.clone(), bus.clone(), handle.clone(), inbox, shutdown.clone())))
    } else {
        tracing::warn!(db = db.name(), "a second relay for one handle: its claims stay with the first");
        None
    };
    tokio::spawn(async move {
        relay(db, bus, handle, shutdown).await;
        if let Some(publisher) = publisher {
            let _ = publisher.await;
        }
    })
}

async fn relay(db: Database, bus: Bus, handle: RelayHandle, shutdown: CancellationToken) {
    let mut failures = 0u32;
    let mut last_cleanup = 0i64;
    let mut last_backlog = 0i64;
    let mut connection = HeldConnection::default();
    db.metrics().drops().outbox_started(db.name());
    loop {
        if now_millis() - last_backlog >= BACKLOG_EVERY_MS {
            last_backlog = now_millis();
            report_backlog(&db).await;
        }
        let outcome = relay_batch(&db, &bus, &handle, &mut connection).await;
        db.metrics().drops().outbox_relayed(db.name(), outcome.as_ref().map_or(0, |o| o.sent), outcome.is_ok());
        let idle = match outcome {
            Ok(pass) => {
                failures = 0;
                pass.read < BATCH as usize || pass.sent == 0
            }
            Err(e) => {
                connection.discard();
                failures += 1;
                tracing::warn!(db = db.name(), error = %e, failures, "outbox relay failed; retrying");
                true
            }
        };
        if now_millis() - last_cleanup > 60_000 {
            last_cleanup = now_millis();
            let _ = sqlx::query("DELETE FROM outbox_events WHERE published_at IS NOT NULL AND published_at < ?")
                .bind(now_millis() - RETENTION_MS)
                .execute(db.pool())
                .await;
        }
        if idle {
            let backoff = IDLE_POLL * 2u32.pow(failures.min(5));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = handle.0.wake.notified() => {}
                _ = tokio::time::sleep(backoff) => {}
            }
        } else if shutdown.is_cancelled() {
            return;
        }
    }
}

/// The direct publisher: publishes claimed events as they are committed (what queued
/// meanwhile goes together), then marks their rows published with one statement. A
/// failure gives them back to the relay, which publishes them again from their rows.
async fn publish_claimed(
    db: Database,
    bus: Bus,
    handle: RelayHandle,
    mut inbox: mpsc::Receiver<Vec<Event>>,
    shutdown: CancellationToken,
) {
    let mut batches = Vec::new();
    let mut connection = HeldConnection::default();
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => 0,
            received = inbox.recv_many(&mut batches, 16) => received,
        };
        if received == 0 {
            // Stopping: what is still queued stays unpublished in the outbox, for the
            // relay of the next start.
            return;
        }
        let events: Vec<Event> = batches.drain(..).flatten().collect();
        let outcome = publish_and_mark(&db, &bus, &mut connection, &events).await;
        db.metrics().drops().outbox_relayed(db.name(), if outcome.is_ok() { events.len() } else { 0 }, outcome.is_ok());
        if let Err(e) = &outcome {
            connection.discard();
            tracing::warn!(db = db.name(), error = %e, events = events.len(),
                "publishing committed events directly failed; the relay takes them");
        }
        handle.release(&events, outcome.is_ok());
    }
}

async fn publish_and_mark(
    db: &Database,
    bus: &Bus,
    connection: &mut HeldConnection,
    events: &[Event],
) -> anyhow::Result<()> {
    bus.publish(events).await?;
    let now = now_millis();
    let _q = db.observe("outbox.mark_direct");
    for chunk in events.chunks(BATCH as usize) {
        let placeholders = vec!["?"; chunk.len()].join(", ");
        let sql = format!("UPDATE outbox_events SET published_at = ? WHERE event_id IN ({placeholders})");
        let mut query = sqlx::query(&sql).bind(now);
        for event in chunk {
            query = query.bind(&event.id);
        }
        query.execute(&mut **connection.get(db).await?).await?;
    }
    Ok(())
}

/// How often the relay counts what is waiting (`goodsmall_outbox_pending`).
const BACKLOG_EVERY_MS: i64 = 1_000;

/// Sets the backlog gauges: rows waiting and the age of the oldest.
async fn report_backlog(db: &Database) {
    let row = {
        let _q = db.observe("outbox.backlog");
        sqlx::query(
            "SELECT COUNT(*) AS waiting, MIN(created_at) AS oldest FROM outbox_events WHERE published_at IS NULL",
        )
        .fetch_one(db.pool())
        .await
    };
    // A count that cannot be read leaves the gauges as they were: never a backlog of 0.
    let read = row.and_then(|row| Ok((row.try_get::<i64, _>("waiting")?, row.try_get::<Option<i64>, _>("oldest")?)));
    match read {
        Ok((waiting, oldest)) => {
            let age = oldest.map_or(0.0, |at| (now_millis() - at).max(0) as f64 / 1000.0);
            db.metrics().drops().outbox_backlog(db.name(), waiting, age);
        }
        Err(e) => tracing::debug!(db = db.name(), error = %e, "counting the outbox backlog failed"),
    }
}

/// One relay pass: how many rows it read, how many it published.
struct Pass {
    read: usize,
    sent: usize,
}

async fn relay_batch(
    db: &Database,
    bus: &Bus,
    handle: &RelayHandle,
    connection: &mut HeldConnection,
) -> anyhow::Result<Pass> {
    // Rows marked from here on may still look unpublished to the query below.
    handle.claims().marked.clear();
    let rows = {
        let _q = db.observe("outbox.unpublished");
        sqlx::query(
            "SELECT seq, event_id, event_key, body FROM outbox_events WHERE published_at IS NULL ORDER BY seq LIMIT ?",
        )
        .bind(BATCH)
        .fetch_all(&mut **connection.get(db).await?)
        .await?
    };
    if rows.is_empty() {
        return Ok(Pass { read: 0, sent: 0 });
    }
    let mut events = Vec::with_capacity(rows.len());
    let mut seqs = Vec::with_capacity(rows.len());
    {
        // A claimed row is the direct publisher's; a later row of its key waits for it,
        // so one key's events keep their order.
        let mut claims = handle.claims();
        let mut held: HashSet<String> = HashSet::new();
        for row in &rows {
            let id: String = row.try_get("event_id")?;
            let key: String = row.try_get("event_key")?;
            if claims.marked.contains(&id) {
                continue;
            }
            if claims.live.contains(&id) {
                held.insert(key);
                continue;
            }
            if held.contains(&key) {
                claims.held_back = true;
                continue;
            }
            let body: String = row.try_get("body")?;
            events.push(serde_json::from_str::<Event>(&body)?);
            seqs.push(row.try_get::<i64, _>("seq")?);
        }
    }
    if events.is_empty() {
        return Ok(Pass { read: rows.len(), sent: 0 });
    }
    bus.publish(&events).await?;
    let placeholders = vec!["?"; seqs.len()].join(", ");
    let sql = format!("UPDATE outbox_events SET published_at = ? WHERE seq IN ({placeholders})");
    let mut query = sqlx::query(&sql).bind(now_millis());
    for seq in &seqs {
        query = query.bind(*seq);
    }
    let _q = db.observe("outbox.mark_published");
    query.execute(&mut **connection.get(db).await?).await?;
    Ok(Pass { read: rows.len(), sent: events.len() })
}
