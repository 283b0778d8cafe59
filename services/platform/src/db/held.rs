//! A connection kept by one busy task between its transactions. sqlx pings a pooled
//! connection when it is handed out and again when it comes back, so a task that takes
//! one from the pool per batch pays two round trips to the database per batch; the
//! purchase path's writer, its event publisher and the payment consumer each commit
//! hundreds of batches a second in a drop. A connection left idle for a while (or held
//! for long) goes back to the pool and a fresh one is taken, pinged as usual, so a
//! connection the server has dropped meanwhile (a restart, `wait_timeout`) is never
//! the one a batch starts on.

use std::time::{Duration, Instant};

use sqlx::{pool::PoolConnection, Any};

use super::Database;

/// Idle longer than this, the connection is given back before the next use.
const IDLE_LIMIT: Duration = Duration::from_secs(5);
/// Held longer than this, it is given back too (the pool's own age limit is bypassed
/// while it is held).
const AGE_LIMIT: Duration = Duration::from_secs(300);

#[derive(Default)]
pub struct HeldConnection {
    held: Option<Held>,
}

struct Held {
    connection: PoolConnection<Any>,
    taken_at: Instant,
    last_used: Instant,
}

impl HeldConnection {
    /// The kept connection, or a fresh one from `db`'s pool when there is none or it
    /// has been idle or held too long.
    pub async fn get(&mut self, db: &Database) -> Result<&mut PoolConnection<Any>, sqlx::Error> {
        let now = Instant::now();
        let stale = self.held.as_ref().is_some_and(|h| now - h.last_used > IDLE_LIMIT || now - h.taken_at > AGE_LIMIT);
        if stale {
            self.held = None;
        }
        let held = match self.held.take() {
            Some(held) => held,
            None => Held { connection: db.pool().acquire().await?, taken_at: now, last_used: now },
        };
        let held = self.held.insert(Held { last_used: now, ..held });
        Ok(&mut held.connection)
    }

    /// Gives the connection back to the pool (which tests it): call after an error, so
    /// that the next use starts on a connection known to work.
    pub fn discard(&mut self) {
        self.held = None;
    }
}
