use std::collections::HashSet;

use sqlx::{Any, Row, Transaction};

use crate::{
    clock::now_millis,
    db::{insert_new, inserted, ROWS_PER_STATEMENT},
};

/// Records that `consumer` handles `event_id`, inside the handler's transaction.
/// `false` means it was handled before: skip it (the transaction then changes nothing).
pub async fn first_time(tx: &mut Transaction<'_, Any>, consumer: &str, event_id: &str) -> Result<bool, sqlx::Error> {
    inserted(
        sqlx::query("INSERT INTO processed_events (consumer, event_id, processed_at) VALUES (?, ?, ?)")
            .bind(consumer)
            .bind(event_id)
            .bind(now_millis())
            .execute(&mut **tx)
            .await,
    )
}

/// [`first_time`] for a batch: records the events `consumer` has not handled yet and
/// returns their ids; handle only those. Two statements per chunk, whatever its size.
/// Should another replica record some of them meanwhile, that chunk is recorded one
/// event at a time, and the ones the other replica has are left to it.
pub async fn first_times(
    tx: &mut Transaction<'_, Any>,
    consumer: &str,
    event_ids: &[&str],
) -> Result<HashSet<String>, sqlx::Error> {
    let mut fresh = HashSet::with_capacity(event_ids.len());
    let now = now_millis();
    for chunk in event_ids.chunks(ROWS_PER_STATEMENT) {
        let placeholders = vec!["?"; chunk.len()].join(", ");
        let sql = format!("SELECT event_id FROM processed_events WHERE consumer = ? AND event_id IN ({placeholders})");
        let mut query = sqlx::query(&sql).bind(consumer);
        for id in chunk {
            query = query.bind(*id);
        }
        let seen: HashSet<String> =
            query.fetch_all(&mut **tx).await?.iter().map(|r| r.try_get("event_id")).collect::<Result<_, _>>()?;
        // Also drops a repeat within the batch (one event delivered twice).
        let mut new: Vec<&str> = Vec::new();
        for id in chunk {
            if !seen.contains(*id) && !fresh.contains(*id) && !new.contains(id) {
                new.push(id);
            }
        }
        let recorded =
            insert_new(tx, "INSERT INTO processed_events (consumer, event_id, processed_at) ", &new, |mut row, id| {
                row.push_bind(consumer).push_bind(id).push_bind(now);
            })
            .await?;
        fresh.extend(recorded.into_iter().map(str::to_owned));
    }
    Ok(fresh)
}
