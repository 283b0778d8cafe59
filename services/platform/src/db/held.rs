//! A connection kept by one busy task between its transactions. sqlx pings a pooled
//! MySQL connection when it is handed out and again when it comes back, so a task that
//! takes one from the pool per batch pays two round trips to the database per batch;
//! the purchase path's writer, its event publisher and the payment consumer each commit
//! hundreds of batches a second in a drop. A connection left idle for a while (or held
//! for long) goes back to the pool and a fresh one is taken, pinged as usual, so a
//! connection the server has dropped meanwhile (a restart, `wait_timeout`) is never the
//! one a batch starts on. On SQLite a ping is a function call, not a round trip, and the
//! pool is small, so there the connection goes back after each use.

use std::{
    ops::{Deref, DerefMut},
    time::{Duration, Instant},
};

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
    /// Kept after the use (MySQL), or given back (SQLite).
    keep: bool,
}

/// The connection for one use (a transaction, a statement); see [`HeldConnection`].
pub struct Lease<'a> {
    held: &'a mut Option<Held>,
}

impl HeldConnection {
    /// The kept connection, or a fresh one from `db`'s pool when there is none or it
    /// has been idle or held too long.
    pub async fn get(&mut self, db: &Database) -> Result<Lease<'_>, sqlx::Error> {
        let now = Instant::now();
        let stale = self.held.as_ref().is_some_and(|h| now - h.last_used > IDLE_LIMIT || now - h.taken_at > AGE_LIMIT);
        if stale {
            self.held = None;
        }
        let held = match self.held.take() {
            Some(held) => Held { last_used: now, ..held },
            None => Held { connection: db.pool().acquire().await?, taken_at: now, last_used: now, keep: db.is_mysql() },
        };
        self.held = Some(held);
        Ok(Lease { held: &mut self.held })
    }

    /// Gives the connection back to the pool (which tests it): call after an error, so
    /// that the next use starts on a connection known to work.
    pub fn discard(&mut self) {
        self.held = None;
    }
}

impl Deref for Lease<'_> {
    type Target = PoolConnection<Any>;

    fn deref(&self) -> &Self::Target {
        &self.held.as_ref().expect("a lease has its connection").connection
    }
}

impl DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.held.as_mut().expect("a lease has its connection").connection
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if self.held.as_ref().is_some_and(|h| !h.keep) {
            *self.held = None;
        }
    }
}
