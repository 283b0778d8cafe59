//! The relay, which publishes unpublished outbox rows in commit order, and beside it
//! the direct publisher of claimed rows.

use std::{collections::HashSet, time::Duration};

use tokio::{sync::mpsc, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use super::{stored_events, OutboxRow, RelayHandle};
use crate::{
    clock::now_millis,
    db::{Database, HeldConnection},
    events::{Bus, Event},
};
use sqlx::Row;

const BATCH: i64 = 500;
const IDLE_POLL: Duration = Duration::from_millis(200);
/// Published rows are kept this long for inspection, then deleted.
const RETENTION_MS: i64 = 24 * 3600 * 1000;

/// Claims (their rows) waiting for the direct publisher; beyond that, claims go
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
    let publisher = if handle.connect(direct) {
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
                _ = handle.woken() => {}
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
    mut inbox: mpsc::Receiver<Vec<OutboxRow>>,
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
        let rows: Vec<OutboxRow> = batches.drain(..).flatten().collect();
        let events: Vec<Event> = rows.iter().flat_map(|row| row.events.iter().cloned()).collect();
        let outcome = publish_and_mark(&db, &bus, &mut connection, &rows, &events).await;
        db.metrics().drops().outbox_relayed(db.name(), if outcome.is_ok() { events.len() } else { 0 }, outcome.is_ok());
        if let Err(e) = &outcome {
            connection.discard();
            tracing::warn!(db = db.name(), error = %e, events = events.len(),
                "publishing committed events directly failed; the relay takes them");
        }
        handle.release(&rows, outcome.is_ok());
    }
}

async fn publish_and_mark(
    db: &Database,
    bus: &Bus,
    connection: &mut HeldConnection,
    rows: &[OutboxRow],
    events: &[Event],
) -> anyhow::Result<()> {
    bus.publish(events).await?;
    let now = now_millis();
    let _q = db.observe("outbox.mark_direct");
    for chunk in rows.chunks(BATCH as usize) {
        let placeholders = vec!["?"; chunk.len()].join(", ");
        let sql = format!("UPDATE outbox_events SET published_at = ? WHERE event_id IN ({placeholders})");
        let mut query = sqlx::query(&sql).bind(now);
        for row in chunk {
            query = query.bind(&row.id);
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
        sqlx::query("SELECT seq, event_id, body FROM outbox_events WHERE published_at IS NULL ORDER BY seq LIMIT ?")
            .bind(BATCH)
            .fetch_all(&mut **connection.get(db).await?)
            .await?
    };
    if rows.is_empty() {
        return Ok(Pass { read: 0, sent: 0 });
    }
    // Decoded outside the claims' lock, and only the rows the direct publisher has not
    // marked meanwhile (those are skipped below whatever they hold): (seq, row id, events).
    let mut stored = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: String = row.try_get("event_id")?;
        if handle.claims().marked.contains(&id) {
            continue;
        }
        let body: String = row.try_get("body")?;
        stored.push((row.try_get::<i64, _>("seq")?, id, stored_events(&body)?));
    }
    let mut events = Vec::with_capacity(stored.len());
    let mut seqs = Vec::with_capacity(stored.len());
    {
        // A claimed row is the direct publisher's; a later row holding one of its keys
        // waits for it (and then holds back its own keys too), so each key's events
        // keep their order.
        let mut claims = handle.claims();
        let mut held: HashSet<String> = HashSet::new();
        for (seq, id, row_events) in stored {
            if claims.marked.contains(&id) {
                continue;
            }
            let waits = row_events.iter().any(|e| held.contains(&e.key));
            if claims.live.contains(&id) || waits {
                claims.held_back |= waits;
                held.extend(row_events.into_iter().map(|e| e.key));
                continue;
            }
            events.extend(row_events);
            seqs.push(seq);
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
