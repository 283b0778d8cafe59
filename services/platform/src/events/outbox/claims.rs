//! A committer's claim on the rows it appended: the relay leaves them to the direct
//! publisher, which sends them from memory once the transaction has committed.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, OnceLock},
};

use tokio::sync::{mpsc, Notify};

use super::{Appended, OutboxRow};

/// Wakes the relay right after a commit, so events do not wait for the next poll, and
/// carries the rows a committer publishes itself ([`RelayHandle::claim`]) to the
/// direct publisher that [`run_relay`](super::run_relay) starts beside the relay.
#[derive(Clone, Default)]
pub struct RelayHandle(Arc<Shared>);

#[derive(Default)]
struct Shared {
    wake: Notify,
    claims: Mutex<Claims>,
    /// Set by `run_relay`: where claimed rows go once committed.
    direct: OnceLock<mpsc::Sender<Vec<OutboxRow>>>,
}

/// What the relay leaves to the direct publisher, by row id.
#[derive(Default)]
pub(super) struct Claims {
    /// Claimed and not yet published and marked (or given back).
    pub(super) live: HashSet<String>,
    /// Published and marked since the relay's current pass began: a row its query read
    /// before the mark may still look unpublished to it.
    pub(super) marked: HashSet<String>,
    /// The relay held back a row behind a claimed one of the same key.
    pub(super) held_back: bool,
}

impl RelayHandle {
    pub fn wake(&self) {
        self.0.wake.notify_one();
    }

    /// Called before committing the transaction that appended `appended`: the relay
    /// leaves those rows, and any later event with one of their keys, to
    /// [`Claim::publish`] after the commit. Dropped unpublished (the commit failed or was
    /// never made), the claim gives them back to the relay. With no direct publisher
    /// running (no `run_relay` for this handle), publishing the claim only wakes the
    /// relay.
    pub fn claim(&self, appended: Appended) -> Claim {
        let direct = self.0.direct.get().is_some() && !appended.rows.is_empty();
        if direct {
            self.claims().live.extend(appended.rows.iter().map(|row| row.id.clone()));
        }
        Claim { handle: self.clone(), rows: appended.rows, direct }
    }

    pub(super) async fn woken(&self) {
        self.0.wake.notified().await
    }

    /// Connects the direct publisher; `false` if this handle has one already.
    pub(super) fn connect(&self, publisher: mpsc::Sender<Vec<OutboxRow>>) -> bool {
        self.0.direct.set(publisher).is_ok()
    }

    pub(super) fn claims(&self) -> std::sync::MutexGuard<'_, Claims> {
        self.0.claims.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The rows are no longer claimed: `marked` when they were published and marked.
    pub(super) fn release(&self, rows: &[OutboxRow], marked: bool) {
        let wake = {
            let mut claims = self.claims();
            for row in rows {
                claims.live.remove(&row.id);
                if marked {
                    claims.marked.insert(row.id.clone());
                }
            }
            !marked || std::mem::take(&mut claims.held_back)
        };
        if wake {
            self.wake();
        }
    }
}

/// Rows appended in a transaction not yet committed, which the relay leaves alone (see
/// [`RelayHandle::claim`]).
#[must_use = "a claim is published after the commit, or dropped to give the events back to the relay"]
pub struct Claim {
    handle: RelayHandle,
    rows: Vec<OutboxRow>,
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
        let rows = std::mem::take(&mut self.rows);
        let sender = self.handle.0.direct.get().expect("a direct claim has a publisher");
        if let Err(e) = sender.try_send(rows) {
            let rows = match e {
                mpsc::error::TrySendError::Full(rows) | mpsc::error::TrySendError::Closed(rows) => rows,
            };
            self.handle.release(&rows, false);
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.direct && !self.rows.is_empty() {
            self.handle.release(&self.rows, false);
        }
    }
}
