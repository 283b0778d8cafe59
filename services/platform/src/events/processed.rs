use sqlx::{Any, Transaction};

use crate::{clock::now_millis, db::is_unique_violation};

/// Records that `consumer` handles `event_id`, inside the handler's transaction.
/// `false` means it was handled before: skip it (the transaction then changes nothing).
pub async fn first_time(tx: &mut Transaction<'_, Any>, consumer: &str, event_id: &str) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query("INSERT INTO processed_events (consumer, event_id, processed_at) VALUES (?, ?, ?)")
        .bind(consumer)
        .bind(event_id)
        .bind(now_millis())
        .execute(&mut **tx)
        .await;
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}
