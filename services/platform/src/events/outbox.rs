//! The transactional outbox and its relay.

use std::{sync::Arc, time::Duration};

use sqlx::{Any, Row, Transaction};
use tokio::{sync::Notify, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use super::{Bus, Event};
use crate::{clock::now_millis, db::Database};

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

/// Wakes the relay right after a commit, so events do not wait for the next poll.
#[derive(Clone, Default)]
pub struct RelayHandle(Arc<Notify>);

impl RelayHandle {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

const BATCH: i64 = 500;
const IDLE_POLL: Duration = Duration::from_millis(200);
/// Published rows are kept this long for inspection, then deleted.
const RETENTION_MS: i64 = 24 * 3600 * 1000;

/// Publishes unpublished outbox rows in commit order until `shutdown`. A row is marked
/// published only after the bus accepted it, so a crash re-publishes (consumers are
/// idempotent) and never loses one.
pub fn run_relay(db: Database, bus: Bus, handle: RelayHandle, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut failures = 0u32;
        let mut last_cleanup = 0i64;
        let mut last_backlog = 0i64;
        db.metrics().drops().outbox_started(db.name());
        loop {
            if now_millis() - last_backlog >= BACKLOG_EVERY_MS {
                last_backlog = now_millis();
                report_backlog(&db).await;
            }
            let outcome = relay_batch(&db, &bus).await;
            db.metrics().drops().outbox_relayed(db.name(), *outcome.as_ref().unwrap_or(&0), outcome.is_ok());
            let idle = match outcome {
                Ok(sent) => {
                    failures = 0;
                    sent < BATCH as usize
                }
                Err(e) => {
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
                    _ = handle.0.notified() => {}
                    _ = tokio::time::sleep(backoff) => {}
                }
            } else if shutdown.is_cancelled() {
                return;
            }
        }
    })
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
    match row {
        Ok(row) => {
            let waiting: i64 = row.try_get("waiting").unwrap_or(0);
            let oldest: Option<i64> = row.try_get("oldest").ok().flatten();
            let age = oldest.map_or(0.0, |at| (now_millis() - at).max(0) as f64 / 1000.0);
            db.metrics().drops().outbox_backlog(db.name(), waiting, age);
        }
        Err(e) => tracing::debug!(db = db.name(), error = %e, "counting the outbox backlog failed"),
    }
}

async fn relay_batch(db: &Database, bus: &Bus) -> anyhow::Result<usize> {
    let rows = {
        let _q = db.observe("outbox.unpublished");
        sqlx::query("SELECT seq, body FROM outbox_events WHERE published_at IS NULL ORDER BY seq LIMIT ?")
            .bind(BATCH)
            .fetch_all(db.pool())
            .await?
    };
    if rows.is_empty() {
        return Ok(0);
    }
    let mut events = Vec::with_capacity(rows.len());
    let mut seqs = Vec::with_capacity(rows.len());
    for row in &rows {
        let body: String = row.try_get("body")?;
        events.push(serde_json::from_str::<Event>(&body)?);
        seqs.push(row.try_get::<i64, _>("seq")?);
    }
    bus.publish(&events).await?;
    let placeholders = vec!["?"; seqs.len()].join(", ");
    let sql = format!("UPDATE outbox_events SET published_at = ? WHERE seq IN ({placeholders})");
    let mut query = sqlx::query(&sql).bind(now_millis());
    for seq in &seqs {
        query = query.bind(*seq);
    }
    let _q = db.observe("outbox.mark_published");
    query.execute(db.pool()).await?;
    Ok(rows.len())
}
