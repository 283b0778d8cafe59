//! Logout and password-change revocations outlive the key-value store. The durable
//! record is the session's `revoked_at` in this service's database, committed before the
//! session's marker is written to the store, where every service looks it up (one round
//! trip per request, never the database). A store that lost its keys (flushed, restarted
//! without persistence) also lacks the `auth:revocations-loaded` marker, and verifiers
//! answer 503 until this keeper has written back every revocation still in force and set
//! the marker again. It checks at start (before the service answers) and every
//! [`KEEPER_TICK`]: the marker missing or naming another store (a restart from a
//! snapshot, a failover), or a revocation it could not write, and it writes them back.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use goodsmall_platform::{
    auth::{revoked_session_key, REVOCATIONS_GUARD_KEY, REVOCATIONS_LOADED_KEY},
    clock::now_millis,
    db::Database,
    error::chain,
    kv::{Kv, KvError},
};
use sqlx::Row;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::crypto::random_id;

/// How often the keeper looks at the store: the longest a store that lost its keys
/// answers 503 to authenticated requests, plus the reload itself.
pub const KEEPER_TICK: Duration = Duration::from_millis(250);

/// A guard outlives any reload (which only reads one indexed range of sessions).
const GUARD_TTL: Duration = Duration::from_secs(60);

/// Why the revocations could not be written back into the key-value store.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("revocations: the key-value store failed")]
    Store(#[from] KvError),
    #[error("revocations: reading the logged-out sessions failed")]
    Database(#[from] sqlx::Error),
}

#[derive(Clone)]
pub struct Revocations {
    db: Database,
    kv: Kv,
    /// How long a marker is kept: every access token of the session has expired after it.
    marker_ttl: Duration,
    /// A revocation was committed but its marker could not be written.
    unwritten: Arc<AtomicBool>,
}

impl Revocations {
    pub fn new(db: Database, kv: Kv, access_ttl: Duration) -> Self {
        Self { db, kv, marker_ttl: access_ttl + Duration::from_secs(60), unwritten: Arc::default() }
    }

    /// Writes the marker of a session just revoked in the database. When the store does
    /// not take it, the keeper writes it back as soon as it can.
    pub async fn mark(&self, session_id: &str) -> Result<(), KvError> {
        let written = self.kv.set(&revoked_session_key(session_id), "1", self.marker_ttl).await;
        if written.is_err() {
            self.unwritten.store(true, Ordering::SeqCst);
        }
        written
    }

    /// Writes every revocation in force back into the store when it needs them; `true`
    /// when this call did.
    pub async fn reload_if_needed(&self) -> Result<bool, ReloadError> {
        let store = self.kv.store_id().await?;
        let loaded_for = self.kv.get(REVOCATIONS_LOADED_KEY).await?;
        let unwritten = self.unwritten.swap(false, Ordering::SeqCst);
        if loaded_for.as_deref() == Some(store.as_str()) && !unwritten {
            return Ok(false);
        }
        let reloaded = self.reload(&store).await;
        if !matches!(reloaded, Ok(true)) && unwritten {
            self.unwritten.store(true, Ordering::SeqCst);
        }
        reloaded
    }

    /// One reload: the guard first, then the database, then everything at once while the
    /// guard still stands (`Kv::set_all_if`). `false` when the store lost its keys
    /// meanwhile (the next tick starts over).
    async fn reload(&self, store: &str) -> Result<bool, ReloadError> {
        let token = random_id();
        self.kv.set(REVOCATIONS_GUARD_KEY, &token, GUARD_TTL).await?;
        let ttl_ms = self.marker_ttl.as_millis() as i64;
        let now = now_millis();
        let rows = {
            let _q = self.db.observe("session.revoked_since");
            sqlx::query("SELECT id, revoked_at FROM sessions WHERE revoked_at > ?")
                .bind(now - ttl_ms)
                .fetch_all(self.db.pool())
                .await?
        };
        let mut entries = Vec::with_capacity(rows.len() + 1);
        for row in &rows {
            let (id, revoked_at): (String, i64) = (row.try_get("id")?, row.try_get("revoked_at")?);
            // Kept as long as it would have been had it never been lost.
            let left = Duration::from_millis((revoked_at + ttl_ms - now).max(1) as u64);
            entries.push((revoked_session_key(&id), "1".to_owned(), Some(left)));
        }
        entries.push((REVOCATIONS_LOADED_KEY.to_owned(), store.to_owned(), None));
        let written = self.kv.set_all_if(REVOCATIONS_GUARD_KEY, &token, &entries).await?;
        if written {
            tracing::info!(
                revocations = rows.len(),
                store,
                "logged-out sessions written back into the key-value store"
            );
        }
        Ok(written)
    }

    /// Keeps the store's revocations whole until `shutdown`.
    pub fn spawn_keeper(self, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(KEEPER_TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if let Err(e) = self.reload_if_needed().await {
                    tracing::warn!(
                        error = %chain(&e),
                        "cannot write the logged-out sessions back into the key-value store"
                    );
                }
            }
        })
    }
}
